#include "server/byte_stream.hpp"

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <sys/socket.h>

#include <cerrno>
#include <climits>
#include <stdexcept>

namespace plexus {
namespace {

class PlainStream final : public ByteStream {
 public:
  explicit PlainStream(int fd) : fd_(fd) {}
  bool short_read_drains() const override { return true; }
  IoStatus read(char* buf, std::size_t cap, std::size_t& n) override {
    ssize_t r = ::recv(fd_, buf, cap, 0);
    if (r > 0) {
      n = static_cast<std::size_t>(r);
      return IoStatus::kOk;
    }
    if (r == 0) return IoStatus::kClosed;
    return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR ? IoStatus::kWouldBlock
                                                                     : IoStatus::kError;
  }
  IoStatus write(const char* buf, std::size_t len, std::size_t& n) override {
    ssize_t r = ::send(fd_, buf, len, MSG_NOSIGNAL);
    if (r >= 0) {
      n = static_cast<std::size_t>(r);
      return IoStatus::kOk;
    }
    return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR ? IoStatus::kWouldBlock
                                                                     : IoStatus::kError;
  }

 private:
  int fd_;
};

class TlsStream final : public ByteStream {
 public:
  TlsStream(SSL_CTX* ctx, int fd) : ssl_(SSL_new(ctx)) {
    if (!ssl_) throw std::runtime_error("SSL_new failed");
    SSL_set_fd(ssl_, fd);
    SSL_set_accept_state(ssl_);
  }
  ~TlsStream() override { SSL_free(ssl_); }
  bool short_read_drains() const override { return false; }

  IoStatus read(char* buf, std::size_t cap, std::size_t& n) override {
    int r = SSL_read(ssl_, buf, static_cast<int>(std::min<std::size_t>(cap, INT_MAX)));
    if (r > 0) {
      n = static_cast<std::size_t>(r);
      return IoStatus::kOk;
    }
    return status_of(r);
  }
  IoStatus write(const char* buf, std::size_t len, std::size_t& n) override {
    int r = SSL_write(ssl_, buf, static_cast<int>(std::min<std::size_t>(len, INT_MAX)));
    if (r > 0) {
      n = static_cast<std::size_t>(r);
      return IoStatus::kOk;
    }
    return status_of(r);
  }

 private:
  IoStatus status_of(int r) {
    int err = SSL_get_error(ssl_, r);
    ERR_clear_error();  // the error queue is per thread: leave nothing for the next connection
    switch (err) {
      case SSL_ERROR_WANT_READ:
      case SSL_ERROR_WANT_WRITE:
        return IoStatus::kWouldBlock;
      case SSL_ERROR_ZERO_RETURN:
        return IoStatus::kClosed;
      default:
        return IoStatus::kError;
    }
  }
  SSL* ssl_;
};

}  // namespace

std::unique_ptr<ByteStream> make_plain_stream(int fd) { return std::make_unique<PlainStream>(fd); }

TlsContext::TlsContext(const std::string& cert_file, const std::string& key_file) {
  SSL_CTX* ctx = SSL_CTX_new(TLS_server_method());
  if (!ctx) throw std::runtime_error("cannot create a TLS context");
  SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
  // The connection's output buffer may move between two tries of one write (it grows).
  SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
  if (SSL_CTX_use_certificate_chain_file(ctx, cert_file.c_str()) != 1) {
    SSL_CTX_free(ctx);
    throw std::runtime_error("cannot load the TLS certificate " + cert_file);
  }
  if (SSL_CTX_use_PrivateKey_file(ctx, key_file.c_str(), SSL_FILETYPE_PEM) != 1 ||
      SSL_CTX_check_private_key(ctx) != 1) {
    SSL_CTX_free(ctx);
    throw std::runtime_error("cannot load the TLS key " + key_file + " (or it does not match the certificate)");
  }
  ctx_ = ctx;
}

TlsContext::~TlsContext() { SSL_CTX_free(static_cast<SSL_CTX*>(ctx_)); }

std::unique_ptr<ByteStream> TlsContext::wrap(int fd) const {
  return std::make_unique<TlsStream>(static_cast<SSL_CTX*>(ctx_), fd);
}

}  // namespace plexus
