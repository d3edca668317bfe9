;; expect: bad-response
;; The response is an array, `[5, "x"]`, which a lenient decoder reads as the fields in order;
;; docs/ABI.md asks for a map.
(module
  (memory (export "memory") 2)
  (func (export "leadtime_abi_version") (result i32) i32.const 1)
  (func (export "leadtime_alloc") (param i32) (result i32) i32.const 65536)
  (data (i32.const 1024) "\92\05\a1x")
  (func (export "leadtime_decide") (param i32 i32) (result i64) i64.const 4398046511108)
)
