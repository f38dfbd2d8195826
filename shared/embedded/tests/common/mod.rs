//! A scratch directory per test, removed when the test ends.

use std::path::PathBuf;

use squaremcp_core::random;

pub struct ScratchDir(PathBuf);

impl ScratchDir {
    pub fn new(purpose: &str) -> Self {
        let path = std::env::temp_dir().join(format!("squaremcp-{purpose}-{}", random::hex_id::<8>()));
        std::fs::create_dir_all(&path).expect("creating a scratch directory");
        Self(path)
    }

    pub fn file(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
