#include "core/url.h"

#include <gtest/gtest.h>

namespace herald {
namespace {

TEST(ParseHttpUrlTest, SplitsEveryPart) {
  auto url = ParseHttpUrl("HTTPS://Push.Example.COM:8443/a/b%20c?x=1&y=%2F#frag");
  ASSERT_TRUE(url.has_value());
  EXPECT_EQ(url->scheme, "https");
  EXPECT_EQ(url->host, "push.example.com");
  EXPECT_EQ(url->port, 8443);
  EXPECT_EQ(url->path, "/a/b%20c");
  EXPECT_EQ(url->query, "x=1&y=%2F");
  EXPECT_TRUE(url->has_fragment);
  EXPECT_FALSE(url->has_userinfo);
}

TEST(ParseHttpUrlTest, DefaultsPortAndPath) {
  auto https = ParseHttpUrl("https://example.com");
  ASSERT_TRUE(https.has_value());
  EXPECT_EQ(https->port, 443);
  EXPECT_EQ(https->path, "/");
  EXPECT_EQ(https->query, "");
  EXPECT_FALSE(https->has_fragment);

  auto http = ParseHttpUrl("http://example.com?q");
  ASSERT_TRUE(http.has_value());
  EXPECT_EQ(http->port, 80);
  EXPECT_EQ(http->path, "/");
  EXPECT_EQ(http->query, "q");
}

TEST(ParseHttpUrlTest, Ipv6LiteralLosesBrackets) {
  auto url = ParseHttpUrl("http://[::1]:8080/push");
  ASSERT_TRUE(url.has_value());
  EXPECT_EQ(url->host, "::1");
  EXPECT_EQ(url->port, 8080);
  EXPECT_EQ(url->path, "/push");

  auto upper = ParseHttpUrl("https://[FE80::AB]/");
  ASSERT_TRUE(upper.has_value());
  EXPECT_EQ(upper->host, "fe80::ab");
}

TEST(ParseHttpUrlTest, RecordsUserinfoAndUsesTheHostAfterIt) {
  auto url = ParseHttpUrl("https://user:pa%20ss@example.com@127.0.0.1/");
  EXPECT_FALSE(url.has_value());  // '@' is not allowed inside userinfo

  url = ParseHttpUrl("https://user:pass@hooks.example.com/x");
  ASSERT_TRUE(url.has_value());
  EXPECT_TRUE(url->has_userinfo);
  EXPECT_EQ(url->host, "hooks.example.com");
}

TEST(ParseHttpUrlTest, AcceptsValidForms) {
  for (const char* text : {
           "http://localhost:3000/v1",
           "https://127.0.0.1/",
           "https://a.b-c.example/",
           "https://example.com./",
           "https://my_host.internal/",
           "https://example.com:1/",
           "https://example.com:65535/",
           "https://example.com/p;a=1/b:c@d!$&'()*+,=~",
           "https://example.com/?a=/b?c",
           "https://fcm.googleapis.com/fcm/send/abc:APA91b",
           "https://[2001:db8::1]/",
           "https://[::ffff:127.0.0.1]/",
       }) {
    EXPECT_TRUE(ParseHttpUrl(text).has_value()) << text;
  }
}

TEST(ParseHttpUrlTest, RejectsInvalidForms) {
  for (const char* text : {
           "",
           "example.com",
           "/relative/path",
           "ftp://example.com/",
           "mailto:ops@example.com",
           "https:/example.com",
           "https://",
           "https:///path",
           "https://:443/",
           "https://example.com:/",
           "https://example.com:0/",
           "https://example.com:65536/",
           "https://example.com:123456/",
           "https://example.com:8a/",
           "https://exa mple.com/",
           "https://example.com/a b",
           "https://example.com/a\tb",
           "https://example.com/\x01",
           "https://example.com/%zz",
           "https://example.com/%2",
           "https://example.com/<script>",
           "https://example.com\\@evil.com/",
           "https://exa%6dple.com/",
           "https://-example.com/",
           "https://example..com/",
           "https://ex\xc3\xa4mple.com/",
           "https://[::1/",
           "https://[::1]x/",
           "https://[fe80::1%25eth0]/",
           "https://[v1.abc]/",
           "https://[127.0.0.1]/",
           "https://256.0.0.1/",
           "https://127.1/",
           "https://2130706433/",
           "https://0x7f.0.0.1/",
           "https://010.0.0.1/",
           "https://example.com/#a#b",
           "https://example.com/?a b",
       }) {
    EXPECT_FALSE(ParseHttpUrl(text).has_value()) << text;
  }
}

struct HostCase {
  const char* host;
  bool is_private;
};

class IsPrivateHostTest : public testing::TestWithParam<HostCase> {};

TEST_P(IsPrivateHostTest, Classifies) {
  EXPECT_EQ(IsPrivateHost(GetParam().host), GetParam().is_private) << GetParam().host;
}

INSTANTIATE_TEST_SUITE_P(
    Table, IsPrivateHostTest,
    testing::Values(
        // IPv4
        HostCase{"127.0.0.1", true}, HostCase{"127.255.255.254", true}, HostCase{"10.1.2.3", true},
        HostCase{"172.16.0.1", true}, HostCase{"172.31.255.255", true},
        HostCase{"172.15.255.255", false}, HostCase{"172.32.0.1", false},
        HostCase{"192.168.1.1", true}, HostCase{"169.254.169.254", true},
        HostCase{"100.64.0.1", true}, HostCase{"100.127.255.255", true},
        HostCase{"100.128.0.1", false}, HostCase{"0.0.0.0", true}, HostCase{"224.0.0.1", true},
        HostCase{"239.255.255.250", true}, HostCase{"255.255.255.255", true},
        HostCase{"8.8.8.8", false}, HostCase{"1.1.1.1", false}, HostCase{"93.184.216.34", false},
        // IPv6
        HostCase{"::1", true}, HostCase{"::", true}, HostCase{"fe80::1", true},
        HostCase{"febf::1", true}, HostCase{"fc00::1", true}, HostCase{"fd12:3456::1", true},
        HostCase{"ff02::1", true}, HostCase{"::ffff:127.0.0.1", true},
        HostCase{"::ffff:7f00:1", true}, HostCase{"::ffff:10.0.0.1", true},
        HostCase{"::ffff:169.254.169.254", true}, HostCase{"::ffff:8.8.8.8", false},
        HostCase{"64:ff9b::a00:1", true}, HostCase{"2002:c0a8:0101::1", true},
        HostCase{"2001:4860:4860::8888", false}, HostCase{"2606:4700::1111", false},
        HostCase{"[::1]", true}, HostCase{"[2001:4860:4860::8888]", false},
        // Names
        HostCase{"localhost", true}, HostCase{"LOCALHOST", true}, HostCase{"localhost.", true},
        HostCase{"foo.localhost", true}, HostCase{"a.b.localhost", true},
        HostCase{"notlocalhost", false}, HostCase{"localhost.example.com", false},
        HostCase{"example.com", false}, HostCase{"metadata.google.internal", false},
        HostCase{"", false},
        // Legacy IPv4 spellings resolvers still accept
        HostCase{"127.1", true}, HostCase{"2130706433", true}, HostCase{"0x7f000001", true},
        HostCase{"0177.0.0.1", true}));

TEST(IsPrivateAddressTest, ResolvedAddresses) {
  EXPECT_TRUE(IsPrivateAddress("10.0.0.1"));
  EXPECT_TRUE(IsPrivateAddress("::1"));
  EXPECT_TRUE(IsPrivateAddress("fe80::1%eth0"));
  EXPECT_TRUE(IsPrivateAddress("::ffff:192.168.0.10"));
  EXPECT_FALSE(IsPrivateAddress("8.8.8.8"));
  EXPECT_FALSE(IsPrivateAddress("2001:4860:4860::8888"));
  // Not an address: names are the caller's business.
  EXPECT_FALSE(IsPrivateAddress("localhost"));
  EXPECT_FALSE(IsPrivateAddress("example.com"));
}

TEST(IsPrivateHostTest, AppliesToParsedUrls) {
  auto url = ParseHttpUrl("http://[::1]:9000/push");
  ASSERT_TRUE(url.has_value());
  EXPECT_TRUE(IsPrivateHost(url->host));

  url = ParseHttpUrl("https://foo.localhost/");
  ASSERT_TRUE(url.has_value());
  EXPECT_TRUE(IsPrivateHost(url->host));

  url = ParseHttpUrl("https://updates.push.services.mozilla.com/wpush/v2/abc");
  ASSERT_TRUE(url.has_value());
  EXPECT_FALSE(IsPrivateHost(url->host));
}

}  // namespace
}  // namespace herald
