# Sourced by the scripts: one place for tool versions, PATH and the wasm build route.
# shellcheck shell=bash

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
export ROOT

# trunk 0.21.14 builds with the stable toolchain of this machine kind (0.22 needs rustc >= 1.96.1).
TRUNK_VERSION="0.21.14"
# wasm-bindgen's CLI must equal the library version that Cargo.lock resolved.
WASM_BINDGEN_VERSION="$(awk '/^name = "wasm-bindgen"$/ {getline; gsub(/version = |"/, ""); print; exit}' "$ROOT/Cargo.lock")"
export TRUNK_VERSION WASM_BINDGEN_VERSION

# Tools installed by scripts/setup: cargo-installed binaries and npm's binaryen (wasm-opt).
export PATH="$HOME/.cargo/bin:$ROOT/node_modules/.bin:$PATH"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
# trunk must never try to download wasm-bindgen or wasm-opt: both are pinned in Trunk.toml.
export TRUNK_OFFLINE=true

# Where scripts/setup records which way the wasm32 standard library is available:
#   A — rustup's wasm32-unknown-unknown target;  B — Debian's rustc-web and build-std (see docs/toolchain.md).
WASM_ROUTE_FILE="$ROOT/target/.wasm-route"

wasm_route() {
    if rustup target list --installed 2>/dev/null | grep -qx wasm32-unknown-unknown; then
        echo A
    elif [ -f "$WASM_ROUTE_FILE" ]; then
        cat "$WASM_ROUTE_FILE"
    else
        echo none
    fi
}

# The standard library's sources, which the size-optimised release build recompiles (scripts/setup
# installs them with `rustup component add rust-src`).
std_src_dir() {
    echo "$(rustc --print sysroot 2>/dev/null)/lib/rustlib/src/rust/library"
}

# Issue 7's size budget (the flags and std features): scripts/lib/size-flags. On route A, setup
# prebuilds std with them and .cargo/config.toml's rustc wrapper (scripts/lib/rustc-wasm) applies
# them to `trunk build --release` by itself; route B still passes them here, with build-std.
# shellcheck source=size-flags
source "$ROOT/scripts/lib/size-flags"
# …and links through scripts/lib/wasm-ld-size, which keeps wasm-streams' unused exports (and so
# their code) out of the wasm; it calls the route's own wasm-ld, given as WASM_LD_REAL.
WASM_SIZE_LINKER="$ROOT/scripts/lib/wasm-ld-size"

# Runs a command (trunk, or cargo for the wasm32 target) with the environment of the wasm route in use.
# On route B a command with `--release` (trunk build --release) gets the size-optimised build;
# others (trunk serve, cargo clippy) keep the plain one, with panic messages.
with_wasm_env() {
    local size=()
    case " $* " in
    *" --release "*)
        size=(CARGO_UNSTABLE_BUILD_STD_FEATURES="$WASM_SIZE_STD_FEATURES"
            CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUSTFLAGS="$WASM_SIZE_RUSTFLAGS"
            CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_LINKER="$WASM_SIZE_LINKER")
        ;;
    esac
    case "$(wasm_route)" in
    A)
        # Nothing to add: trunk and cargo find everything by themselves (issue 15).
        "$@"
        ;;
    B)
        # Debian's compiler first on PATH; build-std only for this call, so native builds never see it.
        PATH="/usr/bin:$PATH" RUSTC_BOOTSTRAP=1 \
            CARGO_UNSTABLE_BUILD_STD=std,panic_abort \
            CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_LINKER=/usr/lib/llvm-22/bin/wasm-ld \
            WASM_LD_REAL=/usr/lib/llvm-22/bin/wasm-ld \
            CARGO_TARGET_DIR="$ROOT/target/wasm-route-b" env "${size[@]}" "$@"
        ;;
    *)
        echo "no wasm32 toolchain: run scripts/setup" >&2
        return 1
        ;;
    esac
}

# scripts/dev runs trunk in a child bash: it needs these too.
export WASM_ROUTE_FILE WASM_SIZE_RUSTFLAGS WASM_SIZE_STD_FEATURES WASM_SIZE_LINKER
export -f wasm_route std_src_dir with_wasm_env

step() { printf '\033[1m==> %s\033[0m\n' "$*"; }
ok() { printf '    ok: %s\n' "$*"; }
