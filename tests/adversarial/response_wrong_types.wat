;; expect: bad-response
;; `replicas` is a string.
(module
  (memory (export "memory") 2)
  (func (export "leadtime_abi_version") (result i32) i32.const 1)
  (func (export "leadtime_alloc") (param i32) (result i32) i32.const 65536)
  (data (i32.const 1024) "\81\a8\72\65\70\6c\69\63\61\73\a5\74\68\72\65\65")
  (func (export "leadtime_decide") (param i32 i32) (result i64) i64.const 4398046511120)
)
