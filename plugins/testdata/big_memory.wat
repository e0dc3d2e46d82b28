;; Refused: declares 2000 pages (125 MiB) of memory at start.
(module
  (memory (export "memory") 2000)
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
  (func (export "eddy_validate_batch") (param $len i32) (result i64) (i64.const -1))
)
