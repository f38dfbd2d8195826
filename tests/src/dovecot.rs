//! A real IMAP server for the email tests: Dovecot (Debian's `dovecot-imapd` and
//! `dovecot-lmtpd`, installed by `scripts/test`) started on loopback on free ports with its own
//! configuration, users (a passwd file) and TLS certificates (a test CA and a leaf for
//! 127.0.0.1), in a temporary directory; stopped when dropped. Nothing system-wide is touched.
//! It runs as the current user, or as `nobody` when the tests run as root.
//!
//! Mailboxes are seeded as Maildir files before it starts; mail sent later arrives over LMTP
//! (the SMTP sink relays into [`Dovecot::lmtp_port`]).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::{TempDir, free_port};

/// Where Debian installs the binaries.
const DOVECOT: &str = "/usr/sbin/dovecot";
const DOVEADM: &str = "/usr/bin/doveadm";

pub struct Dovecot {
    dir: TempDir,
    /// Plain IMAP (STARTTLS offered).
    pub imap_port: u16,
    /// IMAP over TLS.
    pub imaps_port: u16,
    pub lmtp_port: u16,
}

/// One seeded message: the folder (as displayed, `INBOX` or e.g. `Projekte/Überblick`) and the
/// raw RFC 5322 text.
pub struct Seed<'a> {
    pub user: &'a str,
    pub folder: &'a str,
    pub message: String,
}

impl Dovecot {
    /// Whether Dovecot is installed here (`scripts/test` installs it).
    pub fn installed() -> bool {
        Path::new(DOVECOT).exists()
    }

    /// Starts Dovecot with `users` (`(address, password)`), the given extra folders (display
    /// names) for every user, and the seeded messages.
    pub fn start(users: &[(&str, &str)], folders: &[&str], seeds: &[Seed<'_>]) -> Self {
        Self::start_with_oauth2(users, folders, seeds, None)
    }

    /// As `start`, and with `introspection_url` also SASL XOAUTH2 and OAUTHBEARER, whose tokens
    /// Dovecot's oauth2 passdb checks by POSTing `token=…` to that URL (RFC 7662 introspection):
    /// the answer must be `{"active": true, "email": "<the SASL user>"}`.
    pub fn start_with_oauth2(users: &[(&str, &str)], folders: &[&str], seeds: &[Seed<'_>], introspection_url: Option<&str>) -> Self {
        assert!(Self::installed(), "Dovecot is not installed: run scripts/test (it installs Debian's dovecot-imapd and dovecot-lmtpd)");
        let dir = TempDir::new("dovecot");
        let d = dir.path().to_path_buf();
        for sub in ["run", "state", "mail"] {
            std::fs::create_dir_all(d.join(sub)).unwrap();
        }
        certificates(&d);
        let passwd: String = users.iter().map(|(user, password)| format!("{user}:{{PLAIN}}{password}\n")).collect();
        std::fs::write(d.join("users"), passwd).unwrap();
        for (user, _) in users {
            let maildir = d.join("mail").join(user).join("Maildir");
            for folder in folders.iter().copied().chain(["INBOX"]) {
                let path = folder_dir(&maildir, folder);
                for sub in ["cur", "new", "tmp"] {
                    std::fs::create_dir_all(path.join(sub)).unwrap();
                }
            }
            let subscriptions: String = folders.iter().map(|f| format!("{}\n", encode_folder(f))).collect();
            std::fs::write(maildir.join("subscriptions"), subscriptions).unwrap();
        }
        for (index, seed) in seeds.iter().enumerate() {
            let maildir = d.join("mail").join(seed.user).join("Maildir");
            let name = format!("{}.M{index}P{}.seed", 1_700_000_000 + index, std::process::id());
            std::fs::write(folder_dir(&maildir, seed.folder).join("new").join(name), seed.message.replace('\n', "\r\n")).unwrap();
        }

        let (mechanisms, oauth2_passdb) = match introspection_url {
            Some(url) => {
                let settings = format!("introspection_mode = post\nintrospection_url = {url}\nusername_attribute = email\n\
                    active_attribute = active\nactive_value = true\n");
                std::fs::write(d.join("oauth2.conf"), settings).unwrap();
                ("plain login xoauth2 oauthbearer", format!("passdb {{\n  driver = oauth2\n  mechanisms = xoauth2 oauthbearer\n  args = {}\n}}\n", d.join("oauth2.conf").display()))
            }
            None => ("plain login", String::new()),
        };
        let (imap_port, imaps_port, lmtp_port) = (free_port(), free_port(), free_port());
        let (user, group, uid, gid) = run_as();
        let config = CONFIG
            .replace("@D@", &d.display().to_string())
            .replace("@USER@", &user)
            .replace("@GROUP@", &group)
            .replace("@UID@", &uid.to_string())
            .replace("@GID@", &gid.to_string())
            .replace("@IMAP@", &imap_port.to_string())
            .replace("@IMAPS@", &imaps_port.to_string())
            .replace("@LMTP@", &lmtp_port.to_string())
            .replace("@MECHANISMS@", mechanisms)
            .replace("@OAUTH2_PASSDB@\n", &oauth2_passdb);
        std::fs::write(d.join("dovecot.conf"), config).unwrap();
        if is_root() {
            let owner = format!("{uid}:{gid}");
            assert!(Command::new("chown").args(["-R", &owner]).arg(&d).status().unwrap().success());
        }
        let status = as_user(DOVECOT).arg("-c").arg(d.join("dovecot.conf")).status().expect("start dovecot");
        assert!(status.success(), "dovecot did not start; see {}", d.join("dovecot.log").display());
        let server = Self { dir, imap_port, imaps_port, lmtp_port };
        server.wait_ready();
        server
    }

    /// The test CA that signed the server's certificate (PEM), for `SQUAREMCP_EXTRA_CA_FILE`.
    pub fn ca_file(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }

    /// The server's certificate and key (PEM, for 127.0.0.1 and localhost, signed by
    /// [`Dovecot::ca_file`]): other test servers on loopback may present them too.
    pub fn server_certificate(&self) -> (PathBuf, PathBuf) {
        (self.dir.path().join("cert.pem"), self.dir.path().join("key.pem"))
    }

    fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        for port in [self.imap_port, self.imaps_port, self.lmtp_port] {
            while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
                assert!(Instant::now() < deadline, "dovecot did not listen on {port}: {}", self.log());
                std::thread::sleep(Duration::from_millis(25));
            }
        }
    }

    /// Dovecot's log, for failure messages.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("dovecot.log")).unwrap_or_default()
    }

    /// Runs a small IMAP session as `user` on the plain port and returns the server's whole
    /// answer: `commands` are sent one by one (tagged `a1`, `a2`, …) after LOGIN.
    pub fn imap(&self, user: &str, password: &str, commands: &[&str]) -> String {
        use std::io::{BufRead as _, BufReader, Write as _};
        let stream = std::net::TcpStream::connect(("127.0.0.1", self.imap_port)).unwrap();
        stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut reader = BufReader::new(stream.try_clone().unwrap());
        let mut writer = stream;
        let mut transcript = String::new();
        let mut line = String::new();
        reader.read_line(&mut line).unwrap();
        let all = std::iter::once(format!("LOGIN \"{user}\" \"{password}\"")).chain(commands.iter().map(|c| (*c).to_owned()));
        for (index, command) in all.chain(std::iter::once("LOGOUT".to_owned())).enumerate() {
            let tag = format!("a{index}");
            writer.write_all(format!("{tag} {command}\r\n").as_bytes()).unwrap();
            loop {
                line.clear();
                if reader.read_line(&mut line).unwrap() == 0 {
                    return transcript;
                }
                transcript.push_str(&line);
                if line.starts_with(&format!("{tag} ")) {
                    break;
                }
            }
        }
        transcript
    }
}

impl Drop for Dovecot {
    fn drop(&mut self) {
        let _ = as_user(DOVEADM).arg("-c").arg(self.dir.path().join("dovecot.conf")).arg("stop").status();
    }
}

/// The on-disk Maildir++ folder for a display name: `.` + modified UTF-7 with `/` as `.`.
fn folder_dir(maildir: &Path, folder: &str) -> PathBuf {
    if folder == "INBOX" { maildir.to_path_buf() } else { maildir.join(format!(".{}", encode_folder(folder).replace('/', "."))) }
}

/// Modified UTF-7 (RFC 3501 §5.1.3), as the server names folders.
fn encode_folder(name: &str) -> String {
    squaremcp_platforms::email::utf7::encode(name)
}

fn is_root() -> bool {
    id(&["-u"]) == "0"
}

fn id(args: &[&str]) -> String {
    let out = Command::new("id").args(args).output().expect("id");
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// `(user, group, uid, gid)` Dovecot runs as: the current user, or `nobody` for root.
fn run_as() -> (String, String, u32, u32) {
    if is_root() {
        let group = if Command::new("getent").args(["group", "nogroup"]).output().is_ok_and(|o| o.status.success()) { "nogroup" } else { "nobody" };
        ("nobody".to_owned(), group.to_owned(), 65534, 65534)
    } else {
        (id(&["-un"]), id(&["-gn"]), id(&["-u"]).parse().unwrap(), id(&["-g"]).parse().unwrap())
    }
}

/// A command run as the Dovecot user (through `setpriv` when the tests run as root).
fn as_user(program: &str) -> Command {
    if is_root() {
        let mut command = Command::new("setpriv");
        command.args(["--reuid=65534", "--regid=65534", "--clear-groups", program]);
        command
    } else {
        Command::new(program)
    }
}

/// A test CA and a server certificate for 127.0.0.1 and localhost (CA:FALSE, serverAuth: what
/// rustls accepts), made with openssl.
fn certificates(d: &Path) {
    let run = |args: &[&str]| {
        let out = Command::new("openssl").args(args).current_dir(d).output().expect("openssl");
        assert!(out.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    };
    run(&["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca-key.pem", "-out", "ca.pem", "-days", "2", "-subj", "/CN=SquareMCP test CA",
        "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign"]);
    run(&["req", "-newkey", "rsa:2048", "-nodes", "-keyout", "key.pem", "-out", "server.csr", "-subj", "/CN=127.0.0.1"]);
    std::fs::write(
        d.join("server.ext"),
        "basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\nsubjectAltName=IP:127.0.0.1,DNS:localhost\n",
    )
    .unwrap();
    run(&["x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca-key.pem", "-CAcreateserial", "-out", "cert.pem", "-days", "2", "-extfile", "server.ext"]);
}

const CONFIG: &str = r#"# Written by the SquareMCP tests: a private Dovecot on loopback.
protocols = imap lmtp
listen = 127.0.0.1
base_dir = @D@/run
state_dir = @D@/state
log_path = @D@/dovecot.log
info_log_path = @D@/dovecot.log
ssl = yes
ssl_cert = <@D@/cert.pem
ssl_key = <@D@/key.pem
disable_plaintext_auth = no
auth_mechanisms = @MECHANISMS@
first_valid_uid = 1
default_internal_user = @USER@
default_internal_group = @GROUP@
default_login_user = @USER@
@OAUTH2_PASSDB@
passdb {
  driver = passwd-file
  args = scheme=PLAIN username_format=%u @D@/users
}
userdb {
  driver = static
  args = uid=@UID@ gid=@GID@ home=@D@/mail/%u
}
mail_location = maildir:~/Maildir
namespace inbox {
  inbox = yes
  separator = /
  mailbox Drafts {
    special_use = \Drafts
    auto = subscribe
  }
  mailbox Sent {
    special_use = \Sent
    auto = subscribe
  }
  mailbox Trash {
    special_use = \Trash
    auto = subscribe
  }
  mailbox Junk {
    special_use = \Junk
    auto = subscribe
  }
}
service anvil {
  chroot =
}
service imap-login {
  chroot =
  inet_listener imap {
    port = @IMAP@
  }
  inet_listener imaps {
    port = @IMAPS@
    ssl = yes
  }
}
service lmtp {
  inet_listener lmtp {
    address = 127.0.0.1
    port = @LMTP@
  }
}
protocol lmtp {
  postmaster_address = postmaster@example.test
}
"#;
