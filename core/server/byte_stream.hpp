#pragma once
// A client connection's bytes, plain or TLS, on a non-blocking socket. The connection code above
// it is the same for both.
#include <cstddef>
#include <memory>
#include <string>

namespace plexus {

enum class IoStatus {
  kOk,          // `n` bytes moved (n > 0)
  kWouldBlock,  // try again when the socket is ready (TLS may want the other direction)
  kClosed,      // the peer closed its side (orderly)
  kError,       // reset, TLS failure...
};

class ByteStream {
 public:
  virtual ~ByteStream() = default;
  virtual IoStatus read(char* buf, std::size_t cap, std::size_t& n) = 0;
  virtual IoStatus write(const char* buf, std::size_t len, std::size_t& n) = 0;
  // True when a read shorter than asked means the socket had nothing more (plain TCP); false
  // when the stream may hold bytes of its own (TLS records already decrypted).
  virtual bool short_read_drains() const = 0;
};

std::unique_ptr<ByteStream> make_plain_stream(int fd);

// A server-side TLS context, built once from PEM files; throws std::runtime_error naming the
// file that could not be used.
class TlsContext {
 public:
  TlsContext(const std::string& cert_file, const std::string& key_file);
  ~TlsContext();
  TlsContext(const TlsContext&) = delete;
  TlsContext& operator=(const TlsContext&) = delete;
  std::unique_ptr<ByteStream> wrap(int fd) const;  // the handshake runs inside the first reads

 private:
  void* ctx_;  // SSL_CTX, kept out of this header
};

}  // namespace plexus
