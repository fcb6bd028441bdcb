module lmsd/bench/loadgen

go 1.22
