-- luarocks make llsocket-scm-1.rockspec
-- Builds the llsocket-lua crate as a Lua module (needs cargo) for the Lua that
-- luarocks targets: lua51, lua52, lua53, lua54 or luajit, always with `module`
-- (the .so links no Lua; the interpreter provides the symbols).
rockspec_format = "3.0"
package = "llsocket"
version = "scm-1"
source = {
    url = "git+file:///work/main",
}
description = {
    summary = "low-level socket module (lua-llsocket 0.15 API) written in Rust",
    license = "MIT",
}
dependencies = {
    "lua >= 5.1",
}
build = {
    type = "command",
    build_command = [[
feature=$($(LUA) -e "io.write(jit and 'luajit' or ('lua' .. _VERSION:sub(5):gsub('%.', '')))") &&
cargo build --release -p llsocket-lua --lib --no-default-features --features "$feature,module" &&
cp "${CARGO_TARGET_DIR:-target}/release/libllsocket.so" llsocket.so
]],
    install = {
        lib = {
            llsocket = "llsocket.so",
        },
    },
}
