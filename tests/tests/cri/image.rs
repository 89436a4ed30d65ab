//! The pods' images, built locally with umoci (no registry): busybox-static plus a static SysV
//! shared memory helper, imported into containerd's `k8s.io` namespace under the exact names
//! CRI asks for, so it never tries to pull.

use std::path::Path;
use std::process::Command;

use rvisor_tests::{ok, run_for};

use super::bait::shm_helper;
use super::node::{Node, APP_IMAGE, PAUSE_IMAGE};

/// busybox applets the pods run.
const APPLETS: [&str; 9] = [
    "sh", "nc", "hostname", "ps", "sleep", "echo", "cat", "true", "grep",
];

fn busybox() -> &'static Path {
    ["/bin/busybox", "/usr/bin/busybox"]
        .into_iter()
        .map(Path::new)
        .find(|p| p.exists())
        .expect("busybox is required: apt-get install busybox-static")
}

fn umoci(args: &[&str]) {
    ok(&run_for(Command::new("umoci").args(args), 120));
}

/// Builds the app image, imports it, derives the pause image (same layer, entrypoint
/// `sleep inf`), imports that, and checks CRI sees both by name.
pub fn build_and_import(node: &Node) {
    let layout = node.dir.join("image");
    let bundle = node.dir.join("image-unpacked");
    let layout_s = layout.display().to_string();
    let tag = format!("{layout_s}:1");
    umoci(&["init", "--layout", &layout_s]);
    umoci(&["new", "--image", &tag]);
    umoci(&["unpack", "--image", &tag, &bundle.display().to_string()]);
    let rootfs = bundle.join("rootfs");
    for d in ["bin", "proc", "dev", "sys", "tmp", "etc"] {
        std::fs::create_dir_all(rootfs.join(d)).unwrap();
    }
    std::fs::copy(busybox(), rootfs.join("bin/busybox")).unwrap();
    for tool in APPLETS {
        std::os::unix::fs::symlink("busybox", rootfs.join("bin").join(tool)).unwrap();
    }
    std::fs::copy(shm_helper(), rootfs.join("bin/shm")).unwrap();
    umoci(&["repack", "--image", &tag, &bundle.display().to_string()]);
    import(node, &layout, APP_IMAGE);
    umoci(&[
        "config",
        "--image",
        &tag,
        "--config.entrypoint",
        "/bin/sleep",
        "--config.cmd",
        "inf",
    ]);
    import(node, &layout, PAUSE_IMAGE);
    for name in [APP_IMAGE, PAUSE_IMAGE] {
        rvisor_tests::wait_until(&format!("CRI to know {name}"), || {
            node.cri.image_status(name).ok().flatten().is_some()
        });
    }
}

/// Imports the layout's tag `1` as `name` (`repo:1`).
fn import(node: &Node, layout: &Path, name: &str) {
    let tar = node.dir.join("image.tar");
    ok(&run_for(
        Command::new("tar")
            .arg("-C")
            .arg(layout)
            .arg("-cf")
            .arg(&tar)
            .arg("."),
        120,
    ));
    let repo = name.strip_suffix(":1").expect("images are tagged 1");
    node.ctr(&[
        "images",
        "import",
        "--base-name",
        repo,
        &tar.display().to_string(),
    ]);
    let _ = std::fs::remove_file(tar);
}
