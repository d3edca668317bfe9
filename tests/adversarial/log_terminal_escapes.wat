;; expect: policy-error
;; Logs, and answers an error, with a carriage return, ESC sequences (erase line, set the
;; terminal title) and BEL: text meant to forge or erase lines of the host's output.
(module
  (import "leadtime" "log" (func $log (param i32 i32 i32)))
  (memory (export "memory") 2)
  (func (export "leadtime_abi_version") (result i32) i32.const 1)
  (func (export "leadtime_alloc") (param i32) (result i32) i32.const 65536)
  (data (i32.const 512) "ok\0d\1b[2Kdecision: 100 replicas\1b]0;pwned\07")
  (data (i32.const 1024) "\81\a5error\d9\27ok\0d\1b[2Kdecision: 100 replicas\1b]0;pwned\07")
  (func (export "leadtime_decide") (param i32 i32) (result i64)
    (call $log (i32.const 3) (i32.const 512) (i32.const 39))
    i64.const 4398046511152)
)
