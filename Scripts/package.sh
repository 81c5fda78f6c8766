#!/usr/bin/env bash
# Builds the three programs in release with the Swift runtime linked in (--static-swift-stdlib:
# only glibc, libstdc++/libgcc and OpenSSL stay dynamic), packs them with the README (and a
# LICENSE, if the repository has one) into dist/remotedialer-<version>-linux-<arch>.tar.gz, then
# runs Scripts/test-package.sh on that archive: a file moved through the packaged server and
# client from an empty directory, without the Swift toolchain.
# usage: Scripts/package.sh
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="/opt/swift/usr/bin:$PATH"

bash Scripts/install-deps.sh
version=$(sed -n 's/.*static let version = "remotedialer-swift \(.*\)".*/\1/p' Sources/remotedialer-server/main.swift)
[ -n "$version" ] || { echo "package: no version in Sources/remotedialer-server/main.swift" >&2; exit 1; }
name="remotedialer-$version-linux-$(uname -m)"
programs=(remotedialer-server remotedialer-client remotedialer-dummy)

# Its own scratch path, so the harness's ordinary release build (.build) is left as it is.
scratch=.build-static
bash Scripts/build-programs.sh "${programs[@]}"

staging=$(mktemp -d)
trap 'rm -rf "$staging"' EXIT
mkdir "$staging/$name"
for program in "${programs[@]}"; do
    install -m 755 "$scratch/release/$program" "$staging/$name/"
done
strip "$staging/$name"/remotedialer-*
cp README.md "$staging/$name/"
[ ! -f LICENSE ] || cp LICENSE "$staging/$name/"
mkdir -p dist
tar -C "$staging" -czf "dist/$name.tar.gz" "$name"
echo "package: wrote dist/$name.tar.gz ($(du -h "dist/$name.tar.gz" | cut -f1))"

bash Scripts/test-package.sh "dist/$name.tar.gz"
