;; A validator that rejects records whose value is empty or null (code 42,
;; reason "value is empty"). eddy_init logs and fails if the first config
;; key is "fail".
(module
  (import "eddy" "log" (func $log (param i32 i32 i32)))
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
  (data (i32.const 1024) "value is empty")
  (data (i32.const 1100) "configured")
  (data (i32.const 1200) "config key fail says to fail")
  (func (export "eddy_init") (param $len i32) (result i32)
    (call $log (i32.const 1) (i32.const 1100) (i32.const 10))
    (if (i32.and
          (i32.ge_u (i32.load (i32.const 65536)) (i32.const 1))
          (i32.and
            (i32.eq (i32.load (i32.const 65540)) (i32.const 4))
            (i32.eq (i32.load (i32.const 65544)) (i32.const 0x6c696166)))) ;; "fail"
      (then
        (global.set $errp (i32.const 1200))
        (global.set $errn (i32.const 28))
        (return (i32.const -7))))
    (i32.const 0))
  (func (export "eddy_validate_batch") (param $len i32) (result i64)
    (local $n i32) (local $i i32) (local $p i32) (local $out i32) (local $w i32) (local $vlen i32)
    (local.set $out (i32.add (i32.const 65536) (local.get $len)))
    (local.set $n (i32.load (i32.const 65536)))
    (i32.store (local.get $out) (local.get $n))
    (local.set $p (i32.const 65540))
    ;; verdict bytes
    (block $done
      (loop $records
        (br_if $done (i32.ge_u (local.get $i) (local.get $n)))
        (local.set $vlen (i32.load (call $skip_nullable (i32.add (local.get $p) (i32.const 16)))))
        (i32.store8 (i32.add (i32.add (local.get $out) (i32.const 4)) (local.get $i))
          (i32.lt_s (local.get $vlen) (i32.const 1)))
        (local.set $p (call $skip_record (local.get $p)))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $records)))
    ;; reasons: u32 index, u32 code, u32 len, text
    (local.set $w (i32.add (i32.add (local.get $out) (i32.const 4)) (local.get $n)))
    (local.set $i (i32.const 0))
    (block $done
      (loop $reasons
        (br_if $done (i32.ge_u (local.get $i) (local.get $n)))
        (if (i32.load8_u (i32.add (i32.add (local.get $out) (i32.const 4)) (local.get $i)))
          (then
            (i32.store (local.get $w) (local.get $i))
            (i32.store offset=4 (local.get $w) (i32.const 42))
            (i32.store offset=8 (local.get $w) (i32.const 14))
            (memory.copy (i32.add (local.get $w) (i32.const 12)) (i32.const 1024) (i32.const 14))
            (local.set $w (i32.add (local.get $w) (i32.const 26)))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $reasons)))
    (call $pack (local.get $out) (i32.sub (local.get $w) (local.get $out))))
)
