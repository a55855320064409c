-- luarocks make llsocket-scm-1.rockspec        (from a clone of this repository)
--
-- Builds the llsocket-lua crate as a Lua module with cargo for the Lua that luarocks
-- targets (5.1, 5.2, 5.3, 5.4 or LuaJIT, chosen with `--lua-version`), always with the
-- `module` feature: the library links no Lua, the interpreter provides the symbols (on
-- macOS the workspace's .cargo/config.toml links it with `-undefined dynamic_lookup`).
-- One shared library serves `llsocket` and every `llsocket.<sub>` entry point.
rockspec_format = "3.0"
package = "llsocket"
version = "scm-1"
source = {
    -- `luarocks make` builds the working tree it is run in; nothing is fetched
    url = "git+https://example.invalid/llsocket-rs.git",
}
description = {
    summary = "low-level socket module (lua-llsocket 0.15 API) written in Rust",
    detailed = [[
A drop-in for the C module lua-llsocket 0.15 on Lua 5.1-5.4 and LuaJIT: every socket
operation the kernel offers (descriptor passing, sendfile, source-specific multicast,
every option), and a deterministic simulated network behind the same API.
]],
    license = "MIT",
}
dependencies = {
    "lua >= 5.1",
}
build_dependencies = {}
build = {
    type = "command",
    build_command = [[
feature=$($(LUA) -e "io.write(jit and 'luajit' or ('lua' .. _VERSION:sub(5):gsub('%.', '')))") &&
cargo build --release -p llsocket-lua --lib --no-default-features --features "$feature,module" &&
ext=so && if [ "$(uname -s)" = Darwin ]; then ext=dylib; fi &&
cp "${CARGO_TARGET_DIR:-target}/release/libllsocket.$ext" llsocket.so
]],
    install = {
        lib = {
            llsocket = "llsocket.so",
        },
    },
}
