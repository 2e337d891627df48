//! What to tell an admin, in English and Japanese, when what they entered in
//! the connection form does not work: the setting to fix, in the words of the
//! setup screens they used (docs/salesforce-facts.md, "Setup vocabulary"). A bare `invalid_grant` or
//! "not a key" helps nobody.
//!
//! What goes wrong: Salesforce refuses the token exchange ([`Cause`],
//! classified from its answer), the pasted private key is no usable key
//! ([`key_hint`] for a [`KeyRefusal`]), a field of the connection form is
//! wrong ([`registration_hint`]), or a user link cannot be made
//! ([`link_hint`]). The wording lives here, beside the admin API that shows
//! it, so the domain types say only what is wrong and never depend on the
//! admin API's [`Text`].

use fa_runtime::admin::Text;

use crate::{private_key::KeyRefusal, registration, user_link};

/// What a refusal most likely means, decided from Salesforce's `error` and
/// `error_description` alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cause {
    /// `invalid_client_id`: the consumer key is wrong or from another org.
    ConsumerKey,
    /// The user is not pre-authorised for the app, or not of this org.
    NotPreApproved,
    /// The key does not match the certificate uploaded to the app.
    CertificateMismatch,
    /// Sandbox org with the production login URL or the reverse.
    Audience,
    /// Profile IP ranges or login hours.
    IpOrLoginHours,
    /// The integration user is deactivated.
    InactiveUser,
    /// The org is locked, closed or suspended.
    InactiveOrg,
    /// Too many logins.
    RateLimited,
    /// The app is an External Client App not installed in the org.
    AppNotInstalled,
    /// The JWT expired on arrival: our clock, or Salesforce's.
    Expired,
    /// Anything else.
    Unknown,
}

impl Cause {
    /// Classifies Salesforce's answer.
    pub fn of(error: &str, description: &str) -> Self {
        let description = description.to_ascii_lowercase();
        match error {
            "invalid_client_id" => Self::ConsumerKey,
            "invalid_app_access" => Self::NotPreApproved,
            "inactive_user" => Self::InactiveUser,
            "inactive_org" => Self::InactiveOrg,
            "rate_limit_exceeded" => Self::RateLimited,
            _ if description.contains("approved") => Self::NotPreApproved,
            _ if description.contains("invalid assertion") => Self::CertificateMismatch,
            _ if description.contains("audience") => Self::Audience,
            _ if description.contains("ip restricted") || description.contains("login hours") => Self::IpOrLoginHours,
            _ if description.contains("not installed") => Self::AppNotInstalled,
            _ if description.contains("expired") => Self::Expired,
            "invalid_client" if description.contains("client") => Self::ConsumerKey,
            _ => Self::Unknown,
        }
    }

    /// A stable name for logs, metrics and the problem document's `cause`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ConsumerKey => "consumer_key",
            Self::NotPreApproved => "user_not_pre_approved",
            Self::CertificateMismatch => "certificate_mismatch",
            Self::Audience => "login_url_audience",
            Self::IpOrLoginHours => "ip_or_login_hours",
            Self::InactiveUser => "inactive_user",
            Self::InactiveOrg => "inactive_org",
            Self::RateLimited => "login_rate_limited",
            Self::AppNotInstalled => "app_not_installed",
            Self::Expired => "assertion_expired",
            Self::Unknown => "unknown",
        }
    }

    /// The hint, naming the screen and setting to fix.
    pub fn hint(self) -> Text {
        match self {
            Self::ConsumerKey => Text::new(
                "Salesforce does not know this consumer key. Copy the Consumer Key again from Setup → App Manager → your connected app → View (コンシューマー鍵), and check that the app is in the same org as the username.",
                "Salesforce がこのコンシューマー鍵を認識できません。設定 → アプリケーションマネージャ → 対象の接続アプリケーション → 参照 から「コンシューマー鍵」をもう一度コピーしてください。接続アプリケーションがユーザーID(username)と同じ組織にあることも確認してください。",
            ),
            Self::NotPreApproved => Text::new(
                "The user is not pre-authorised for this connected app. In Setup → Manage Connected Apps → your app → Edit Policies, set Permitted Users to \"Admin approved users are pre-authorized\"; then under Manage Profiles add the user's profile (e.g. System Administrator). Also check that the username belongs to the org of this app.",
                "このユーザーは接続アプリケーションで事前承認されていません。設定 → 接続アプリケーションを管理する → 対象のアプリ → ポリシーを編集 で「許可されているユーザ」を「管理者が承認したユーザは事前承認済み」にし、「プロファイルを管理する」でユーザーのプロファイル(例: システム管理者)を追加してください。ユーザーID(username)がこのアプリと同じ組織のものかも確認してください。",
            ),
            Self::CertificateMismatch => Text::new(
                "The private key does not match the certificate uploaded to the connected app. Paste the server.key made together with the server.crt uploaded under \"Use digital signatures\", or upload the server.crt that matches this key.",
                "貼り付けた秘密鍵が、接続アプリケーションの「デジタル署名を使用」にアップロードした証明書と一致しません。アップロードした server.crt と一緒に作成した server.key を貼り付けるか、この鍵に対応する server.crt をアップロードし直してください。",
            ),
            Self::Audience => Text::new(
                "The login URL does not match the org: use https://test.salesforce.com for a sandbox and https://login.salesforce.com for production.",
                "ログイン URL が組織の種類と一致しません。Sandbox は https://test.salesforce.com、本番組織は https://login.salesforce.com を指定してください。",
            ),
            Self::IpOrLoginHours => Text::new(
                "Salesforce refused the login because of IP restrictions or login hours. In the connected app's Edit Policies set IP Relaxation to relax IP restrictions, and check the login IP ranges and login hours of the user's profile: the connector calls from the cloud at any hour.",
                "IP 制限またはログイン時間帯の制限によりログインが拒否されました。接続アプリケーションの「ポリシーを編集」で「IP制限の緩和」を設定し、ユーザーのプロファイルのログイン IP アドレスの範囲とログイン時間帯を確認してください(コネクタはクラウドから時間を問わず接続します)。",
            ),
            Self::InactiveUser => Text::new(
                "The Salesforce user is deactivated. Reactivate the user, or register with another active user's username.",
                "Salesforce ユーザーが無効化されています。ユーザーを有効にするか、有効な別のユーザーのユーザーID(username)で登録してください。",
            ),
            Self::InactiveOrg => Text::new(
                "The Salesforce org is locked, closed or suspended. Check the org's status with your Salesforce administrator.",
                "Salesforce 組織がロック、閉鎖、または停止されています。組織の状態を Salesforce 管理者に確認してください。",
            ),
            Self::RateLimited => Text::new(
                "Salesforce refused the login because the user has logged in too often. Wait an hour and try again.",
                "ログイン回数の上限を超えたため Salesforce がログインを拒否しました。1 時間ほど待ってからもう一度お試しください。",
            ),
            Self::AppNotInstalled => Text::new(
                "The app is not installed in this org. Install the external client app in the org of this username, or use a connected app of this org.",
                "アプリがこの組織にインストールされていません。ユーザーID(username)の組織にアプリをインストールするか、この組織の接続アプリケーションを使用してください。",
            ),
            Self::Expired => Text::new(
                "Salesforce found the login request expired. This usually means a clock difference; try again in a minute, and tell Front Agent support if it persists.",
                "ログイン要求の有効期限切れと判断されました。多くは時刻のずれが原因です。1 分ほどしてからもう一度お試しください。続く場合は Front Agent サポートにお問い合わせください。",
            ),
            Self::Unknown => Text::new(
                "Salesforce refused the login. Check the connected app (consumer key, \"Use digital signatures\" certificate, Edit Policies → \"Admin approved users are pre-authorized\", Manage Profiles) and the username; Salesforce's own error is included below.",
                "Salesforce がログインを拒否しました。接続アプリケーション(コンシューマー鍵、「デジタル署名を使用」の証明書、ポリシーを編集 →「管理者が承認したユーザは事前承認済み」、プロファイルを管理する)とユーザーID(username)を確認してください。Salesforce からのエラー内容も併せて返しています。",
            ),
        }
    }
}

/// What the admin pasted instead of a usable key and what to do, naming `server.key`, the
/// `openssl` command to run and the Salesforce screen, as the setup guide does. Built from the
/// refusal alone, so it never repeats any of the pasted text.
// About 100 lines: one arm per refusal, kept together so the wording reads as one table.
pub fn key_hint(refusal: &KeyRefusal) -> Text {
    match refusal {
        KeyRefusal::Empty => Text::new(
            format!("No private key was pasted. {COPY_KEY_EN}"),
            format!("秘密鍵が貼り付けられていません。{COPY_KEY_JA}"),
        ),
        KeyRefusal::Encrypted { pkcs8: false } => Text::new(
            "The private key is encrypted with a password, so it cannot be used as it is. Remove the password: \
             in the folder holding server.key, run `openssl rsa -in server.key -out server_nopass.key` and type \
             the password when asked. Then open server_nopass.key in a text editor and paste all of it, from \
             the line -----BEGIN PRIVATE KEY----- (or -----BEGIN RSA PRIVATE KEY-----) to the line \
             -----END PRIVATE KEY----- (or -----END RSA PRIVATE KEY-----), both lines included.",
            "秘密鍵がパスワードで暗号化されているため、このままでは使えません。server.key のあるフォルダで \
             `openssl rsa -in server.key -out server_nopass.key` を実行し、パスワードを聞かれたら入力して、\
             パスワードを外した鍵を作ってください。できた server_nopass.key をテキストエディタで開き、\
             「-----BEGIN PRIVATE KEY-----」（または「-----BEGIN RSA PRIVATE KEY-----」）の行から\
             「-----END PRIVATE KEY-----」（または「-----END RSA PRIVATE KEY-----」）の行まで、\
             両方の行を含めてすべてコピーして貼り付けてください。",
        ),
        KeyRefusal::Encrypted { pkcs8: true } => Text::new(
            "The private key is encrypted with a password (it begins with -----BEGIN ENCRYPTED PRIVATE \
             KEY-----), so it cannot be used as it is. Remove the password: in the folder holding server.key, \
             run `openssl pkcs8 -in server.key -out server_nopass.key` and type the password when asked. Then \
             open server_nopass.key in a text editor and paste all of it, from the line -----BEGIN PRIVATE \
             KEY----- to the line -----END PRIVATE KEY-----, both lines included.",
            "秘密鍵がパスワードで暗号化されている（「-----BEGIN ENCRYPTED PRIVATE KEY-----」で始まる）ため、\
             このままでは使えません。server.key のあるフォルダで \
             `openssl pkcs8 -in server.key -out server_nopass.key` を実行し、パスワードを聞かれたら入力して、\
             パスワードを外した鍵を作ってください。できた server_nopass.key をテキストエディタで開き、\
             「-----BEGIN PRIVATE KEY-----」の行から「-----END PRIVATE KEY-----」の行まで、\
             両方の行を含めてすべてコピーして貼り付けてください。",
        ),
        KeyRefusal::Certificate => Text::new(
            format!(
                "This is a certificate (server.crt, beginning with -----BEGIN CERTIFICATE-----), not the private \
                 key. The certificate goes to Salesforce, under \"Use digital signatures\" of the connected app; \
                 here, paste the private key instead. {COPY_KEY_EN}"
            ),
            format!(
                "貼り付けられたのは証明書（server.crt、「-----BEGIN CERTIFICATE-----」で始まるもの）で、\
                 秘密鍵ではありません。証明書は Salesforce の接続アプリケーションの「デジタル署名を使用」に\
                 アップロードするものです。ここには秘密鍵を貼り付けてください。{COPY_KEY_JA}"
            ),
        ),
        KeyRefusal::CertificateRequest => Text::new(
            format!(
                "This is a certificate signing request (CSR, beginning with -----BEGIN CERTIFICATE \
                 REQUEST-----), not the private key. {COPY_KEY_EN}"
            ),
            format!(
                "貼り付けられたのは証明書署名要求（CSR、「-----BEGIN CERTIFICATE REQUEST-----」で始まるもの）で、\
                 秘密鍵ではありません。{COPY_KEY_JA}"
            ),
        ),
        KeyRefusal::PublicKey => Text::new(
            format!(
                "This is a public key, not the private key. Salesforce gets the certificate (server.crt); this \
                 form needs the private key. {COPY_KEY_EN}"
            ),
            format!(
                "貼り付けられたのは公開鍵で、秘密鍵ではありません。Salesforce には証明書（server.crt）を、\
                 この画面には秘密鍵を登録します。{COPY_KEY_JA}"
            ),
        ),
        KeyRefusal::NotRsa { kind } => Text::new(
            format!(
                "The pasted private key is not an RSA key (its type: {kind}); the Salesforce JWT sign-in \
                 needs an RSA key (RS256). {NEW_KEY_EN}"
            ),
            format!(
                "貼り付けられた秘密鍵は RSA 鍵ではありません（種類: {kind}）。Salesforce の JWT 認証には \
                 RSA 鍵（RS256）が必要です。{NEW_KEY_JA}"
            ),
        ),
        KeyRefusal::TooShort { bits } => Text::new(
            format!(
                "The private key is only {bits} bits long; keys shorter than 2048 bits are too weak and cannot \
                 be used. {NEW_KEY_EN}"
            ),
            format!(
                "秘密鍵の長さが {bits} ビットしかありません。2048 ビット未満の鍵は安全性が低いため使えません。\
                 {NEW_KEY_JA}"
            ),
        ),
        KeyRefusal::TooLong { bits } => Text::new(
            format!(
                "The private key is {bits} bits long; keys longer than 8192 bits cannot be used for signing. \
                 {NEW_KEY_EN}"
            ),
            format!("秘密鍵の長さが {bits} ビットあります。8192 ビットを超える鍵は署名に使えません。{NEW_KEY_JA}"),
        ),
        KeyRefusal::NotAKey => Text::new(
            format!("The pasted text is not a private key, or part of it is missing. {COPY_KEY_EN}"),
            format!("貼り付けられた内容は秘密鍵ではないか、一部が欠けています。{COPY_KEY_JA}"),
        ),
    }
}

/// What is wrong with a field of the connection form, and what to enter.
pub fn registration_hint(refusal: &registration::Refusal) -> Text {
    use registration::Refusal;
    match refusal {
        Refusal::Body(e) => Text::new(
            format!(
                "The body is not a valid connection request: {e}. Send consumer_key, username, private_key and objects."
            ),
            format!(
                "リクエストの内容が正しくありません: {e}。consumer_key、username、private_key、objects を送ってください。"
            ),
        ),
        Refusal::ConsumerKey => Text::new(
            "consumer_key must be the Consumer Key of the connected app (1 to 512 characters).",
            "consumer_key には接続アプリケーションの「コンシューマー鍵」を指定してください(1〜512 文字)。",
        ),
        Refusal::Username => Text::new(
            "username must be the Salesforce username (an e-mail-like login, 3 to 255 characters).",
            "username には Salesforce のユーザー名(メールアドレス形式のログイン ID、3〜255 文字)を指定してください。",
        ),
        Refusal::PrivateKeyLength => Text::new(
            "private_key must be the text of server.key (at most 20,000 characters).",
            "private_key には server.key の内容を貼り付けてください(20,000 文字以内)。",
        ),
        Refusal::UnknownObject(name) => Text::new(
            format!("objects may only name Lead, Contact and Account, not {name:?}."),
            format!("objects に指定できるのは Lead、Contact、Account のみです({name:?} は指定できません)。"),
        ),
        Refusal::DuplicateObject(name) => {
            Text::new(format!("objects names {name} twice."), format!("objects に {name} が 2 回指定されています。"))
        }
        Refusal::NoObjects => Text::new(
            "objects must name at least one of Lead, Contact, Account.",
            "objects には Lead、Contact、Account のうち少なくとも 1 つを指定してください。",
        ),
        Refusal::LoginUrl { url, refusal } => refusal.message(url),
        Refusal::Key(refusal) => key_hint(refusal),
    }
}

/// Why a Front Agent user cannot be linked (or unlinked) as asked, and what
/// to do instead.
pub fn link_hint(refusal: &user_link::Refusal) -> Text {
    use user_link::Refusal;
    match refusal {
        Refusal::UserId => Text::new(
            "The Front Agent user id in the path must be 1 to 128 characters.",
            "パスの Front Agent ユーザー ID は 1〜128 文字で指定してください。",
        ),
        Refusal::Body(e) => Text::new(
            format!("The body must be {{\"salesforce_user_id\": \"005…\"}}: {e}"),
            format!("本文は {{\"salesforce_user_id\": \"005…\"}} の形式で送ってください: {e}"),
        ),
        Refusal::NotAUserId(wanted) => Text::new(
            format!(
                "salesforce_user_id {wanted:?} is not a Salesforce user id (15 or 18 letters and digits starting with 005)."
            ),
            format!(
                "salesforce_user_id {wanted:?} は Salesforce のユーザー ID ではありません(005 で始まる 15 桁または 18 桁の英数字)。"
            ),
        ),
        Refusal::Unknown(wanted) => Text::new(
            format!("The org has no user {wanted}. Pick a user from the CRM user list."),
            format!("組織にユーザー {wanted} は存在しません。CRM ユーザー一覧から選んでください。"),
        ),
        Refusal::Inactive { id, name } => Text::new(
            format!("Salesforce user {name} ({id}) is inactive. Reactivate them in Salesforce or pick an active user."),
            format!(
                "Salesforce ユーザー {name}({id})は無効です。Salesforce で有効にするか、有効なユーザーを選んでください。"
            ),
        ),
        Refusal::NotLinked(user) => Text::new(
            format!("Front Agent user {user} has no Salesforce link."),
            format!("Front Agent ユーザー {user} は Salesforce と連携されていません。"),
        ),
    }
}

/// Where to find the key and what to copy.
const COPY_KEY_EN: &str = "Open server.key (the private key file made together with server.crt) in a text editor \
     and paste all of it, from the line -----BEGIN PRIVATE KEY----- (or -----BEGIN RSA PRIVATE KEY-----) to the line \
     -----END PRIVATE KEY----- (or -----END RSA PRIVATE KEY-----), both lines included.";
const COPY_KEY_JA: &str = "server.key（server.crt と一緒に作成した秘密鍵のファイル）をテキストエディタで開き、\
     「-----BEGIN PRIVATE KEY-----」（または「-----BEGIN RSA PRIVATE KEY-----」）の行から\
     「-----END PRIVATE KEY-----」（または「-----END RSA PRIVATE KEY-----」）の行まで、\
     両方の行を含めてすべてコピーして貼り付けてください。";

/// How to make a usable key, as the setup guide does.
const NEW_KEY_EN: &str = "Make a new 2048-bit key and certificate with \
     `openssl req -x509 -sha256 -nodes -days 365 -newkey rsa:2048 -keyout server.key -out server.crt`, upload the \
     new server.crt to \"Use digital signatures\" of the connected app in Salesforce, then paste the new server.key \
     here, from the line -----BEGIN PRIVATE KEY----- to the line -----END PRIVATE KEY-----, both lines included.";
const NEW_KEY_JA: &str = "次のコマンドで 2048 ビットの鍵と証明書を作り直してください: \
     `openssl req -x509 -sha256 -nodes -days 365 -newkey rsa:2048 -keyout server.key -out server.crt` \
     作成された新しい server.crt を Salesforce の接続アプリケーションの「デジタル署名を使用」にアップロードしてから、\
     新しい server.key をテキストエディタで開き、「-----BEGIN PRIVATE KEY-----」の行から\
     「-----END PRIVATE KEY-----」の行まで、両方の行を含めてすべてコピーして貼り付けてください。";
#[cfg(test)]
mod tests {
    use std::sync::LazyLock;

    use sfsim::keygen::{self, KeyPair};

    use super::*;
    use crate::private_key::RsaPrivateKey;

    static PAIR: LazyLock<KeyPair> = LazyLock::new(|| keygen::generate("fa-test").expect("RSA 2048 key"));
    static SHORT: LazyLock<KeyPair> =
        LazyLock::new(|| keygen::generate_with_bits("fa-short", 1024).expect("RSA 1024 key"));
    static EC: LazyLock<String> = LazyLock::new(|| keygen::generate_ec_p256_pem().expect("EC key"));

    #[test]
    fn salesforce_refusals_map_to_the_setting_to_fix() {
        let check = |error: &str, description: &str, expected: Cause| {
            assert_eq!(Cause::of(error, description), expected, "{error} / {description}");
        };
        check("invalid_client_id", "client identifier invalid", Cause::ConsumerKey);
        check("invalid_grant", "user hasn't approved this consumer", Cause::NotPreApproved);
        check("invalid_app_access", "user is not admin approved to access this app", Cause::NotPreApproved);
        check("invalid_grant", "invalid assertion", Cause::CertificateMismatch);
        check("invalid_grant", "audience is invalid", Cause::Audience);
        check("invalid_grant", "Audience validation failed", Cause::Audience);
        check("invalid_grant", "IP restricted or invalid login hours", Cause::IpOrLoginHours);
        check("invalid_grant", "ip restricted or invalid login hours", Cause::IpOrLoginHours);
        check("invalid_grant", "expired authorization code", Cause::Expired);
        check("inactive_user", "User is inactive", Cause::InactiveUser);
        check("inactive_org", "Org is locked, closed, or suspended", Cause::InactiveOrg);
        check("rate_limit_exceeded", "Number of logins exceeded", Cause::RateLimited);
        check("invalid_grant", "External client app is not installed in this org", Cause::AppNotInstalled);
        check("invalid_grant", "something new", Cause::Unknown);
    }

    #[test]
    fn every_hint_names_the_screen_in_both_languages() {
        let check = |cause: Cause, en: &str, ja: &str| {
            let hint = cause.hint();
            assert!(hint.en.contains(en), "{cause:?}: {}", hint.en);
            assert!(hint.ja.contains(ja), "{cause:?}: {}", hint.ja);
        };
        check(Cause::ConsumerKey, "Consumer Key", "コンシューマー鍵");
        check(Cause::NotPreApproved, "Admin approved users are pre-authorized", "管理者が承認したユーザは事前承認済み");
        check(Cause::NotPreApproved, "Manage Profiles", "プロファイル");
        check(Cause::CertificateMismatch, "Use digital signatures", "デジタル署名を使用");
        check(Cause::Audience, "https://test.salesforce.com", "Sandbox");
        check(Cause::IpOrLoginHours, "IP Relaxation", "IP制限の緩和");
        check(Cause::InactiveUser, "username", "username");
    }

    #[test]
    fn every_key_refusal_has_a_message_in_both_languages() {
        let all = KeyRefusal::every_kind();
        for refusal in &all {
            let text = key_hint(refusal);
            assert!(!text.en.trim().is_empty() && !text.ja.trim().is_empty(), "{refusal:?}");
            assert!(text.en.is_ascii(), "{refusal:?}: {}", text.en);
            assert!(!text.ja.is_ascii(), "{refusal:?}: {}", text.ja);
        }
        let has = |refusal: KeyRefusal, needle: &str| {
            let text = key_hint(&refusal);
            assert!(text.en.contains(needle) && text.ja.contains(needle), "{refusal:?} names {needle}");
        };
        has(KeyRefusal::Encrypted { pkcs8: false }, "openssl rsa -in server.key -out server_nopass.key");
        has(KeyRefusal::Encrypted { pkcs8: true }, "openssl pkcs8 -in server.key -out server_nopass.key");
        let new_key = "openssl req -x509 -sha256 -nodes -days 365 -newkey rsa:2048 -keyout server.key -out server.crt";
        has(KeyRefusal::TooShort { bits: 1024 }, new_key);
        has(KeyRefusal::TooShort { bits: 1024 }, "1024");
        has(KeyRefusal::NotRsa { kind: "EC".into() }, new_key);
        assert!(key_hint(&KeyRefusal::TooShort { bits: 1024 }).ja.contains("デジタル署名を使用"));
        assert!(key_hint(&KeyRefusal::TooShort { bits: 1024 }).ja.contains("接続アプリケーション"));
        has(KeyRefusal::Certificate, "server.crt");
        for refusal in [KeyRefusal::Empty, KeyRefusal::Certificate, KeyRefusal::PublicKey, KeyRefusal::NotAKey] {
            has(refusal.clone(), "server.key");
            has(refusal.clone(), "-----BEGIN RSA PRIVATE KEY-----");
            has(refusal, "-----END PRIVATE KEY-----");
        }
        assert!(key_hint(&KeyRefusal::Encrypted { pkcs8: true }).ja.contains("パスワードで暗号化されて"));
    }

    #[test]
    fn no_refusal_repeats_the_pasted_text() {
        let p1 = PAIR.private_key_pkcs1_pem.as_str();
        let legacy = p1.replacen("-----\n", "-----\nProc-Type: 4,ENCRYPTED\nDEK-Info: AES-128-CBC,00\n\n", 1);
        let encrypted = keygen::encrypt_pkcs8_pem(p1, "s3cret").expect("encrypt");
        let truncated: String = p1.lines().take(10).collect::<Vec<_>>().join("\n");
        let pastes = [
            legacy,
            encrypted,
            truncated,
            PAIR.certificate_pem.clone(),
            SHORT.private_key_pkcs1_pem.clone(),
            EC.clone(),
            p1.replace('\n', " ").replace("MII", "???"),
        ];
        for paste in &pastes {
            let refusal = RsaPrivateKey::parse(paste).expect_err("refused");
            let text = key_hint(&refusal);
            for line in paste.split_whitespace().filter(|t| t.len() >= 16 && !t.contains("-----")) {
                assert!(!text.en.contains(line) && !text.ja.contains(line), "{refusal:?} repeats {line:?}");
                assert!(!refusal.to_string().contains(line));
            }
        }
    }
}
