;; A validator that accepts every record after reading every byte of its
;; value (a stand-in for a parser): loop-heavy, for measuring the cost of
;; termination checks.
(module
  (memory (export "memory") 2)
  (func (export "eddy_abi_version") (result i32) (i32.const 0x10000)) ;; ABI 1.0
  ;; The input buffer starts at 64 KiB; the memory is grown to hold the
  ;; input and an output as big after it. 0 when memory cannot grow.
  (func (export "eddy_input_buffer") (param $size i32) (result i32)
    (local $need i32)
    (local.set $need
      (i32.add (i32.const 1)
        (i32.shr_u (i32.add (i32.shl (local.get $size) (i32.const 1)) (i32.const 131071)) (i32.const 16))))
    (if (i32.gt_u (local.get $need) (memory.size))
      (then
        (if (i32.eq (memory.grow (i32.sub (local.get $need) (memory.size))) (i32.const -1))
          (then (return (i32.const 0))))))
    (i32.const 65536))
  (global $errp (mut i32) (i32.const 0))
  (global $errn (mut i32) (i32.const 0))
  (func (export "eddy_last_error") (result i64)
    (call $pack (global.get $errp) (global.get $errn)))
  (func $pack (param $p i32) (param $n i32) (result i64)
    (i64.or (i64.shl (i64.extend_i32_u (local.get $p)) (i64.const 32))
            (i64.extend_i32_u (local.get $n))))
  ;; A nullable field: i32 len (-1 = null), then len bytes.
  (func $skip_nullable (param $p i32) (result i32)
    (local $n i32)
    (local.set $n (i32.load (local.get $p)))
    (local.set $p (i32.add (local.get $p) (i32.const 4)))
    (if (i32.ne (local.get $n) (i32.const -1))
      (then (local.set $p (i32.add (local.get $p) (local.get $n)))))
    (local.get $p))
  ;; A record: i64 offset_delta, i64 timestamp, key, value,
  ;; u32 header_count, headers (u32 klen, k, i32 vlen, v).
  (func $skip_record (param $p i32) (result i32)
    (local $h i32)
    (local.set $p (call $skip_nullable (i32.add (local.get $p) (i32.const 16))))
    (local.set $p (call $skip_nullable (local.get $p)))
    (local.set $h (i32.load (local.get $p)))
    (local.set $p (i32.add (local.get $p) (i32.const 4)))
    (block $done
      (loop $headers
        (br_if $done (i32.eqz (local.get $h)))
        (local.set $p (i32.add (i32.add (local.get $p) (i32.const 4)) (i32.load (local.get $p))))
        (local.set $p (call $skip_nullable (local.get $p)))
        (local.set $h (i32.sub (local.get $h) (i32.const 1)))
        (br $headers)))
    (local.get $p))
  (global $sum (mut i32) (i32.const 0))
  (func (export "eddy_validate_batch") (param $len i32) (result i64)
    (local $n i32) (local $i i32) (local $p i32) (local $out i32) (local $v i32) (local $end i32) (local $acc i32)
    (local.set $out (i32.add (i32.const 65536) (local.get $len)))
    (local.set $n (i32.load (i32.const 65536)))
    (i32.store (local.get $out) (local.get $n))
    (local.set $p (i32.const 65540))
    (block $done
      (loop $records
        (br_if $done (i32.ge_u (local.get $i) (local.get $n)))
        ;; the value: after offset_delta, timestamp and key
        (local.set $v (call $skip_nullable (i32.add (local.get $p) (i32.const 16))))
        (local.set $end (i32.add (i32.add (local.get $v) (i32.const 4)) (i32.load (local.get $v))))
        (if (i32.eq (i32.load (local.get $v)) (i32.const -1))
          (then (local.set $end (i32.add (local.get $v) (i32.const 4)))))
        (local.set $v (i32.add (local.get $v) (i32.const 4)))
        (block $scanned
          (loop $bytes
            (br_if $scanned (i32.ge_u (local.get $v) (local.get $end)))
            (local.set $acc (i32.add (i32.mul (local.get $acc) (i32.const 31)) (i32.load8_u (local.get $v))))
            (local.set $v (i32.add (local.get $v) (i32.const 1)))
            (br $bytes)))
        (local.set $p (call $skip_record (local.get $p)))
        (i32.store8 (i32.add (i32.add (local.get $out) (i32.const 4)) (local.get $i)) (i32.const 0))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $records)))
    (global.set $sum (local.get $acc))
    (call $pack (local.get $out) (i32.add (local.get $n) (i32.const 4))))
)
