;; expect: bad-response
;; The reason claims a 4 GiB string (str32) in a 23-byte response: the decoder must not trust it.
(module
  (memory (export "memory") 2)
  (func (export "leadtime_abi_version") (result i32) i32.const 1)
  (func (export "leadtime_alloc") (param i32) (result i32) i32.const 65536)
  (data (i32.const 1024) "\82\a8\72\65\70\6c\69\63\61\73\03\a6\72\65\61\73\6f\6e\db\ff\ff\ff\f0")
  (func (export "leadtime_decide") (param i32 i32) (result i64)
    (i64.or (i64.shl (i64.const 1024) (i64.const 32)) (i64.const 23)))
)
