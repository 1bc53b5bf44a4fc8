// TLS for the nghttp2 engine's connections (h2_connection.h): contexts, client certificates,
// session resumption and the per-connection TLS object writing into the connection's buffer.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <memory>
#include <string>

#include "http/h2_connection.h"

namespace herald::http::h2 {
namespace {

bool IsIpLiteral(const std::string& host) {
  unsigned char buffer[sizeof(in6_addr)];
  return inet_pton(AF_INET, host.c_str(), buffer) == 1 ||
         inet_pton(AF_INET6, host.c_str(), buffer) == 1;
}

// The write side of a connection's TLS appends to the connection's output buffer, so that one
// flush's records leave in one send() (with MSG_NOSIGNAL: no SIGPIPE).

int WireWrite(BIO* bio, const char* data, int length) {
  try {
    static_cast<std::string*>(BIO_get_data(bio))->append(data, static_cast<std::size_t>(length));
    return length;
  } catch (...) {
    return -1;
  }
}

long WireControl(BIO*, int command, long, void*) { return command == BIO_CTRL_FLUSH ? 1 : 0; }

int WireCreate(BIO* bio) {
  BIO_set_init(bio, 1);
  return 1;
}

BIO_METHOD* WireMethod() {
  static BIO_METHOD* method = [] {
    BIO_METHOD* m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "herald-h2-wire");
    if (m != nullptr) {
      BIO_meth_set_write(m, WireWrite);
      BIO_meth_set_ctrl(m, WireControl);
      BIO_meth_set_create(m, WireCreate);
    }
    return m;
  }();
  return method;
}

int OnNewTlsSession(SSL* ssl, SSL_SESSION* session) {
  auto* connection = static_cast<Connection*>(SSL_get_app_data(ssl));
  if (connection == nullptr) return 0;
  connection->OnNewSession(session);
  return 1;  // the origin keeps the reference
}

int NoPassword(char*, int, int, void*) { return 0; }

bool UseCertificate(SSL_CTX* context, const ClientCertificate& certificate, std::string* error) {
  auto fail = [&](const char* what) {
    *error = std::string("cannot use the client certificate: ") + what + " (" +
             TlsErrorText("unreadable") + ")";
    return false;
  };
  std::unique_ptr<BIO, decltype(&BIO_free)> certificates(
      BIO_new_mem_buf(certificate.certificate_pem.data(),
                      static_cast<int>(certificate.certificate_pem.size())),
      BIO_free);
  std::unique_ptr<BIO, decltype(&BIO_free)> key(
      BIO_new_mem_buf(certificate.private_key_pem.data(),
                      static_cast<int>(certificate.private_key_pem.size())),
      BIO_free);
  if (!certificates || !key) return fail("out of memory");
  X509* leaf = PEM_read_bio_X509(certificates.get(), nullptr, NoPassword, nullptr);
  if (leaf == nullptr) return fail("no PEM certificate");
  int used = SSL_CTX_use_certificate(context, leaf);
  X509_free(leaf);
  if (used != 1) return fail("certificate rejected");
  while (X509* extra = PEM_read_bio_X509(certificates.get(), nullptr, NoPassword, nullptr)) {
    if (SSL_CTX_add0_chain_cert(context, extra) != 1) {
      X509_free(extra);
      return fail("chain certificate rejected");
    }
  }
  ERR_clear_error();  // the end of the PEM text
  EVP_PKEY* private_key = PEM_read_bio_PrivateKey(key.get(), nullptr, NoPassword, nullptr);
  if (private_key == nullptr) return fail("no unencrypted PEM private key");
  used = SSL_CTX_use_PrivateKey(context, private_key);
  EVP_PKEY_free(private_key);
  if (used != 1 || SSL_CTX_check_private_key(context) != 1) {
    return fail("the private key does not match the certificate");
  }
  return true;
}

}  // namespace

std::string TlsErrorText(const char* fallback) {
  unsigned long code = ERR_peek_last_error();
  std::string text = fallback;
  if (code != 0) {
    char buffer[256];
    ERR_error_string_n(code, buffer, sizeof(buffer));
    const char* reason = ERR_reason_error_string(code);
    text = reason != nullptr ? reason : buffer;
  }
  ERR_clear_error();
  return text;
}

ssl_ctx_st* NewTlsContext(x509_store_st* store, const ClientCertificate* certificate,
                          std::string* error) {
  SSL_CTX* context = SSL_CTX_new(TLS_client_method());
  if (context == nullptr) {
    *error = "cannot create a TLS context: " + TlsErrorText("out of memory");
    return nullptr;
  }
  SSL_CTX_set_min_proto_version(context, TLS1_2_VERSION);  // HTTP/2 needs TLS 1.2 or later
  SSL_CTX_set_options(context, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION);
  if (store != nullptr) SSL_CTX_set1_cert_store(context, store);
  SSL_CTX_set_verify(context, SSL_VERIFY_PEER, nullptr);
  static const unsigned char kAlpn[] = {2, 'h', '2'};
  SSL_CTX_set_alpn_protos(context, kAlpn, sizeof(kAlpn));
  SSL_CTX_set_session_cache_mode(context, SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
  SSL_CTX_sess_set_new_cb(context, OnNewTlsSession);
  if (certificate != nullptr && !UseCertificate(context, *certificate, error)) {
    SSL_CTX_free(context);
    return nullptr;
  }
  return context;
}

void FreeTlsContext(ssl_ctx_st* context) { SSL_CTX_free(context); }

ssl_st* NewTls(ssl_ctx_st* context, int fd, std::string* wire_out, const std::string& host,
               ssl_session_st* resume, Connection* connection, std::string* error) {
  SSL* ssl = SSL_new(context);
  BIO* in = ssl != nullptr ? BIO_new_socket(fd, BIO_NOCLOSE) : nullptr;
  BIO* out = in != nullptr && WireMethod() != nullptr ? BIO_new(WireMethod()) : nullptr;
  if (out == nullptr) {
    BIO_free(in);
    SSL_free(ssl);
    *error = "cannot set up TLS: " + TlsErrorText("out of memory");
    return nullptr;
  }
  BIO_set_data(out, wire_out);
  SSL_set_bio(ssl, in, out);
  SSL_set_connect_state(ssl);
  SSL_set_app_data(ssl, connection);
  bool named = true;
  if (IsIpLiteral(host)) {  // no SNI for an address; the certificate must name it
    named = X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), host.c_str()) == 1;
  } else {
    SSL_set_hostflags(ssl, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
    named =
        SSL_set_tlsext_host_name(ssl, host.c_str()) == 1 && SSL_set1_host(ssl, host.c_str()) == 1;
  }
  if (!named) {
    SSL_free(ssl);
    ERR_clear_error();
    *error = "cannot verify TLS for host " + host;
    return nullptr;
  }
  if (resume != nullptr) SSL_set_session(ssl, resume);
  return ssl;
}

}  // namespace herald::http::h2
