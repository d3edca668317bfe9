;; expect: bad-response
;; The response is a map whose unknown key holds 60,000 nested arrays: the host's decoder must stop at its depth limit, not overflow its own stack.
(module
  (memory (export "memory") 2)
  (func (export "leadtime_abi_version") (result i32) i32.const 1)
  (func (export "leadtime_alloc") (param i32) (result i32) i32.const 65536)
  (data (i32.const 1024) "\81\a1\78")
  (func (export "leadtime_decide") (param i32 i32) (result i64)
    (memory.fill (i32.const 1027) (i32.const 0x91) (i32.const 60000))
    (i64.or (i64.shl (i64.const 1024) (i64.const 32)) (i64.const 60003)))
)
