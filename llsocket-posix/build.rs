//! Short cfg aliases for the platform groups of `src/sys/` (registered for `check-cfg`):
//! `apple`, `freebsdlike` (FreeBSD, DragonFly), `netbsdlike` (NetBSD, OpenBSD), `linuxlike`.

fn main() {
    println!("cargo::rerun-if-changed=build.rs");
    let os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    let vendor = std::env::var("CARGO_CFG_TARGET_VENDOR").unwrap_or_default();
    let aliases = [
        ("apple", vendor == "apple"),
        (
            "freebsdlike",
            matches!(os.as_str(), "freebsd" | "dragonfly"),
        ),
        ("netbsdlike", matches!(os.as_str(), "netbsd" | "openbsd")),
        ("linuxlike", matches!(os.as_str(), "linux" | "android")),
    ];
    for (name, on) in aliases {
        println!("cargo::rustc-check-cfg=cfg({name})");
        if on {
            println!("cargo::rustc-cfg={name}");
        }
    }
}
