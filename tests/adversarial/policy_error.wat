;; expect: policy-error
;; The policy answers with an error message.
(module
  (memory (export "memory") 2)
  (func (export "leadtime_abi_version") (result i32) i32.const 1)
  (func (export "leadtime_alloc") (param i32) (result i32) i32.const 65536)
  (data (i32.const 1024) "\81\a5\65\72\72\6f\72\b2\6e\6f\20\64\61\74\61\20\66\6f\72\20\6d\65\74\72\69\63")
  (func (export "leadtime_decide") (param i32 i32) (result i64) i64.const 4398046511130)
)
