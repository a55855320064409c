//! Build script: the `llsocket-lua` runner exports its symbols (the bundled Lua C API)
//! like the standard `lua` command, so C modules (LuaRocks rocks) load into it.

fn main() {
    let os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    let arg = match os.as_str() {
        "macos" | "ios" => Some("-Wl,-export_dynamic"),
        "linux" | "android" | "freebsd" | "dragonfly" | "netbsd" | "openbsd" => {
            Some("-Wl,--export-dynamic")
        }
        _ => None,
    };
    if let Some(arg) = arg {
        println!("cargo:rustc-link-arg-bin=llsocket-lua={arg}");
    }
    println!("cargo:rerun-if-changed=build.rs");
}
