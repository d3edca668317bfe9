;; expect: host-call
;; Calls log with a buffer past the end of memory.
(module
  (import "leadtime" "log" (func $log (param i32 i32 i32)))
  (memory (export "memory") 2)
  (func (export "leadtime_abi_version") (result i32) i32.const 1)
  (func (export "leadtime_alloc") (param i32) (result i32) i32.const 65536)
  (func (export "leadtime_decide") (param i32 i32) (result i64) (call $log (i32.const 1) (i32.const 131060) (i32.const 100)) i64.const 0)
)
