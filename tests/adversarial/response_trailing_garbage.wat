;; expect: bad-response
;; A valid map, `{replicas: 3}`, followed by two bytes that are no message.
(module
  (memory (export "memory") 2)
  (func (export "leadtime_abi_version") (result i32) i32.const 1)
  (func (export "leadtime_alloc") (param i32) (result i32) i32.const 65536)
  (data (i32.const 1024) "\81\a8replicas\03\c1\c1")
  (func (export "leadtime_decide") (param i32 i32) (result i64) i64.const 4398046511117)
)
