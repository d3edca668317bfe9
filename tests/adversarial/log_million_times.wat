;; expect: out-of-fuel
;; Calls log a million times: each call costs fuel, so the budget ends it.
(module
  (import "leadtime" "log" (func $log (param i32 i32 i32)))
  (memory (export "memory") 2)
  (func (export "leadtime_abi_version") (result i32) i32.const 1)
  (func (export "leadtime_alloc") (param i32) (result i32) i32.const 65536)
  (func (export "leadtime_decide") (param i32 i32) (result i64) (local $i i32)
    (loop $l
      (call $log (i32.const 0) (i32.const 0) (i32.const 8))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $l (i32.lt_u (local.get $i) (i32.const 1000000))))
    i64.const 0)
)
