//! Where deliveries may go (docs/reference.md#webhook-safety): an `http` or `https` URL
//! whose host resolves only to public addresses, checked when an endpoint is created or
//! changed and again at every connection a delivery opens (the client's resolver refuses
//! the rest), so a name that later resolves to an internal address reaches nothing. With
//! `--webhook-allow-private` every address is allowed, for tests and on-premises receivers.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use url::{Host, Url};

/// The longest URL an endpoint may have.
pub const MAX_URL_LENGTH: usize = 2048;

/// How long a delivery may take, from connecting to the last byte of the response read.
pub const DELIVERY_TIMEOUT: Duration = Duration::from_secs(10);

/// The most of a response a delivery reads; the rest is not waited for.
pub const MAX_RESPONSE_BYTES: usize = 64 * 1024;

/// The destinations this server delivers to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Destinations {
    /// Whether loopback, private, link-local and other internal addresses are allowed.
    pub allow_private: bool,
}

impl Destinations {
    /// Checks a URL as given, without resolving its host: a sentence saying what is wrong.
    pub fn parse(&self, text: &str) -> Result<Url, String> {
        if text.len() > MAX_URL_LENGTH {
            return Err(format!("url is longer than {MAX_URL_LENGTH} characters"));
        }
        let url = Url::parse(text).map_err(|error| format!("url is not a valid URL: {error}"))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err("url must be an http or https URL".to_owned());
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(
                "url must not hold credentials: receivers check the signature instead".to_owned(),
            );
        }
        if url.fragment().is_some() {
            return Err("url must not have a #fragment, which is never sent".to_owned());
        }
        match url.host() {
            None => Err("url must name a host".to_owned()),
            Some(Host::Ipv4(ip)) => self.check_address(IpAddr::V4(ip)).map(|()| url),
            Some(Host::Ipv6(ip)) => self.check_address(IpAddr::V6(ip)).map(|()| url),
            Some(Host::Domain(_)) => Ok(url),
        }
    }

    /// Checks a URL and, unless private addresses are allowed, every address its host
    /// resolves to now.
    pub async fn check(&self, text: &str) -> Result<Url, String> {
        let url = self.parse(text)?;
        if let (false, Some(Host::Domain(name))) = (self.allow_private, url.host()) {
            let port = url.port_or_known_default().unwrap_or(443);
            self.resolve(name, port).await?;
        }
        Ok(url)
    }

    /// The addresses a name resolves to, all of them allowed.
    async fn resolve(&self, name: &str, port: u16) -> Result<Vec<SocketAddr>, String> {
        let addresses: Vec<SocketAddr> = tokio::net::lookup_host((name, port))
            .await
            .map_err(|error| format!("url's host {name} cannot be resolved: {error}"))?
            .collect();
        for address in &addresses {
            self.check_address(address.ip())
                .map_err(|refusal| format!("{refusal} (the address of {name})"))?;
        }
        if addresses.is_empty() {
            return Err(format!("url's host {name} resolves to no address"));
        }
        Ok(addresses)
    }

    fn check_address(&self, ip: IpAddr) -> Result<(), String> {
        if self.allow_private || is_public(ip) {
            Ok(())
        } else {
            Err(format!(
                "url points at {ip}, a loopback, private or otherwise internal address, which \
                 this server does not deliver to (see --webhook-allow-private)"
            ))
        }
    }

    /// The HTTP client deliveries are sent with: no redirects followed, no proxy (it would
    /// resolve names itself), and a resolver that allows only what [`Self::check`] allows.
    pub fn client(&self) -> reqwest::Client {
        reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .connect_timeout(DELIVERY_TIMEOUT)
            .timeout(DELIVERY_TIMEOUT)
            .user_agent(concat!(
                "contactd/",
                env!("CARGO_PKG_VERSION"),
                " (webhooks)"
            ))
            .dns_resolver(Arc::new(*self))
            .build()
            .unwrap_or_default()
    }
}

impl reqwest::dns::Resolve for Destinations {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let destinations = *self;
        Box::pin(async move {
            let addresses = destinations.resolve(name.as_str(), 0).await?;
            let addresses: reqwest::dns::Addrs = Box::new(addresses.into_iter());
            Ok(addresses)
        })
    }
}

/// Whether an address is on the public internet: not loopback, private, link-local,
/// shared (CGNAT), documentation, benchmarking, multicast, reserved or unspecified, also
/// when written inside an IPv6 address (mapped, NAT64, 6to4). Written here because the
/// standard library's `is_global` is not stable.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(ip) => is_public_v4(ip),
        IpAddr::V6(ip) => is_public_v6(ip),
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    !(a == 0
        || a == 10
        || a == 127
        || (a == 100 && (64..128).contains(&b))
        || (a == 169 && b == 254)
        || (a == 172 && (16..32).contains(&b))
        || (a == 192 && b == 0 && c == 0)
        || (a == 192 && b == 0 && c == 2)
        || (a == 192 && b == 88 && c == 99)
        || (a == 192 && b == 168)
        || (a == 198 && (18..20).contains(&b))
        || (a == 198 && b == 51 && c == 100)
        || (a == 203 && b == 0 && c == 113)
        || a >= 224)
}

fn is_public_v6(ip: Ipv6Addr) -> bool {
    if let Some(v4) = ip.to_ipv4_mapped() {
        return is_public_v4(v4);
    }
    let segments = ip.segments();
    let embedded = |high: u16, low: u16| Ipv4Addr::from((u32::from(high) << 16) | u32::from(low));
    match segments {
        // NAT64 (64:ff9b::/96) and 6to4 (2002::/16) reach the IPv4 address they hold.
        [0x64, 0xff9b, 0, 0, 0, 0, high, low] => is_public_v4(embedded(high, low)),
        [0x2002, high, low, ..] => is_public_v4(embedded(high, low)),
        _ => {
            !(ip.is_unspecified()
                || ip.is_loopback()
                || ip.is_multicast()
                // IPv4-compatible (::/96), unique local (fc00::/7), link-local (fe80::/10),
                // site-local (fec0::/10), documentation (2001:db8::/32), discard (100::/64).
                || segments[..6] == [0; 6]
                || (segments[0] & 0xfe00) == 0xfc00
                || (segments[0] & 0xffc0) == 0xfe80
                || (segments[0] & 0xffc0) == 0xfec0
                || (segments[0] == 0x2001 && segments[1] == 0x0db8)
                || segments[..4] == [0x100, 0, 0, 0])
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn public(text: &str) -> bool {
        is_public(text.parse().expect("an address"))
    }

    #[test]
    fn only_public_addresses_are_public() {
        for internal in [
            "0.0.0.0",
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "198.18.0.1",
            "224.0.0.1",
            "255.255.255.255",
            "::",
            "::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "64:ff9b::a00:1",
            "2002:c0a8:101::1",
            "fc00::1",
            "fd12:3456::1",
            "fe80::1",
            "2001:db8::1",
            "ff02::1",
        ] {
            assert!(!public(internal), "{internal} is internal");
        }
        for external in [
            "1.1.1.1",
            "8.8.8.8",
            "172.32.0.1",
            "100.128.0.1",
            "2606:4700::1111",
            "::ffff:8.8.8.8",
            "64:ff9b::808:808",
        ] {
            assert!(public(external), "{external} is public");
        }
    }

    #[tokio::test]
    async fn urls_are_refused_for_what_they_are_and_where_they_point() {
        let strict = Destinations {
            allow_private: false,
        };
        for (url, says) in [
            ("ftp://example.com/hook", "http or https"),
            ("not a url", "not a valid URL"),
            ("https://user:pass@example.com/", "credentials"),
            ("https://example.com/#top", "fragment"),
            ("http://127.0.0.1:8080/hook", "127.0.0.1"),
            ("http://[::1]/hook", "::1"),
            ("http://169.254.169.254/latest/meta-data", "169.254.169.254"),
            ("http://localhost:9/hook", "internal address"),
        ] {
            let refusal = strict.check(url).await.expect_err(url);
            assert!(refusal.contains(says), "{url}: {refusal}");
        }
        let long = format!("https://example.com/{}", "a".repeat(MAX_URL_LENGTH));
        assert!(strict.parse(&long).is_err());
        let open = Destinations {
            allow_private: true,
        };
        assert!(open.check("http://127.0.0.1:8080/hook").await.is_ok());
        assert!(open.check("http://localhost:9/hook").await.is_ok());
    }
}
