//! What to tell an admin when Salesforce refuses the token exchange: the
//! setting to fix, in the words of the setup screens they used
//! (setup-vocabulary.md). A bare `invalid_grant` helps nobody.

use fa_runtime::admin::Text;

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

#[cfg(test)]
mod tests {
    use super::*;

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
}
