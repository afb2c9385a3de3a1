module kprof/rigtools

go 1.19
