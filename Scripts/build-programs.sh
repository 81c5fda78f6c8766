#!/usr/bin/env bash
# Builds the programs as they ship, into .build-static/release: release, the Swift runtime linked
# in (--static-swift-stdlib: only glibc, libstdc++/libgcc and OpenSSL stay dynamic), and linked for
# a small resident set. Scripts/package.sh, the harness and Scripts/link-order.sh build with it.
#
# The link: lld; no dynamic symbol table for our own code (the static Swift runtime's link exports
# every symbol, though nothing loaded into these programs looks them up: OpenSSL is C and found
# with dlsym on its own handles, and ld.so touched ~0.35 MiB of that table at startup); and the
# functions a server and client run placed side by side (Scripts/link-order.txt, written by
# Scripts/link-order.sh): the kernel maps code 64 KiB around each page faulted in, so scattered
# run-once code kept most of the text resident. Still position-independent (ASLR holds). Packed
# relative relocations (-z pack-relative-relocs) would save ~0.5 MiB more but need glibc 2.36
# where the programs run (not Ubuntu 22.04), so they are left out. The flags are given here, not
# as unsafeFlags in Package.swift, which SwiftPM refuses in a package others depend on.
# usage: Scripts/build-programs.sh [PRODUCT...]   (default: server, client and dummy)
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="/opt/swift/usr/bin:$PATH"

products=("$@")
[ ${#products[@]} -gt 0 ] || products=(remotedialer-server remotedialer-client remotedialer-dummy)
link=(-Xswiftc -use-ld=lld -Xlinker --no-export-dynamic
      -Xlinker "--symbol-ordering-file=$PWD/Scripts/link-order.txt" -Xlinker --no-warn-symbol-ordering)
for product in "${products[@]}"; do
    swift build -c release --static-swift-stdlib --scratch-path .build-static "${link[@]}" --product "$product"
done
