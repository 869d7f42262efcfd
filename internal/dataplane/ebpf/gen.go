package ebpf

// The BPF objects are built with clang-14 (Debian bookworm's clang-14
// package). Another clang version produces a different object; pin it so
// that `go generate ./internal/dataplane/ebpf/` reproduces the committed
// files byte for byte.
//go:generate go run github.com/cilium/ebpf/cmd/bpf2go -cc clang-14 -strip llvm-strip-14 -target bpfel -type expire_args -type sync_args -cflags "-O2 -g -Wall -Werror -mcpu=v3 -I/usr/include/x86_64-linux-gnu" govs bpf/govs.c
//go:generate go run github.com/cilium/ebpf/cmd/bpf2go -cc clang-14 -strip llvm-strip-14 -target bpfel -cflags "-O2 -g -Wall -Werror -mcpu=v3 -I/usr/include/x86_64-linux-gnu" decap bpf/decap.c
