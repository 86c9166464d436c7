#include "server/api_routes.hpp"

#include <nlohmann/json.hpp>

#include "ledger/ledger.hpp"
#include "receipts/receipt_chain.hpp"
#include "server/api_call.hpp"

// Receipts: the keys they are signed with, a receipt by request id, and the public receipt page.
namespace plexus {

using nlohmann::json;

// GET /.well-known/jwks.json: the keys receipts are signed with, for anyone to verify them.
void ApiRoutes::jwks(Call& call) {
  if (!env_.receipts) return call.json_reply(200, R"({"keys":[]})");
  const auto& key = env_.receipts->key();
  call.json_reply(200, "{\"keys\":[" + receipts::jwk_json(key.public_key(), key.kid()) + "]}", {{"cache-control", "public, max-age=300"}});
}

// GET /v1/receipts/{request_id}: a request's signed receipt (streams get theirs here).
void ApiRoutes::receipt(Call& call, const std::string& request_id) {
  if (!env_.ledger) return call.error({503, "This router keeps no ledger", "server_error", "", "no_ledger"});
  auto responder = call.responder;
  Headers base = call.base;
  env_.ledger->query([request_id](ledger::Store& store) { return json(store.receipt(request_id).jws); }, env_.loop,
                     [responder, base, request_id](json jws) {
                       if (!jws.is_string() || jws.get<std::string>().empty())
                         return send_json(*responder, 404, base,
                                          error_body({404, "No receipt for request '" + request_id + "'", "invalid_request_error",
                                                      "request_id", "receipt_not_found"}));
                       send_json(*responder, 200, base,
                                 json{{"object", "receipt"}, {"request_id", request_id}, {"receipt", jws}}.dump());
                     });
}

namespace {

}  // namespace

// The pages run only the router's own scripts, talk only to the router, and are never framed: a
// page that says whether a receipt is genuine must not be restyled by anyone else.
const Headers& ApiRoutes::page_headers() {
  static const Headers h = {
      {"content-security-policy",
       "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; "
       "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"},
      {"x-content-type-options", "nosniff"},
      {"referrer-policy", "no-referrer"}};
  return h;
}

namespace {

json receipt_json(const receipts::Receipt& r) {
  return r.seq ? json{{"seq", r.seq}, {"jws", r.jws}} : json();
}

}  // namespace

// GET /receipts/{request_id}: the public receipt page. The same page for every id: its script
// reads the id from the address, fetches the receipt and its neighbours in the chain, and checks
// them in the browser.
void ApiRoutes::receipt_page(Call& call) {
  Headers extra = page_headers();
  extra.emplace_back("cache-control", "no-cache");
  page_file(call, "receipt/index.html", extra);
}

// GET /receipts/{request_id}/chain: no key needed. A receipt, the one before it and the one after
// it in the router's chain: what a receipt claims is public by design (no key, group, prompt or
// completion is in it), so anyone holding a request id can check its place in the chain.
void ApiRoutes::receipt_chain(Call& call, const std::string& request_id) {
  if (!env_.ledger) return call.error({503, "This router keeps no ledger", "server_error", "", "no_ledger"});
  auto responder = call.responder;
  Headers base = call.base;
  base.emplace_back("cache-control", "no-store");
  bool queued = env_.ledger->try_query(
      [request_id](ledger::Store& store) {
        auto r = store.receipt(request_id);
        if (!r.seq) return json();
        return json{{"object", "receipt.chain"},
                    {"request_id", request_id},
                    {"receipt", receipt_json(r)},
                    {"previous", receipt_json(store.receipt_at(r.chain, r.seq - 1))},
                    {"next", receipt_json(store.receipt_at(r.chain, r.seq + 1))}};
      },
      env_.loop, [responder, base, request_id](json chain) {
        if (!chain.is_object())
          return send_json(*responder, 404, base,
                           error_body({404, "No receipt for request '" + request_id + "'", "invalid_request_error",
                                       "request_id", "receipt_not_found"}));
        send_json(*responder, 200, base, chain.dump());
      });
  if (!queued)
    call.error({503, "The ledger is busy; retry shortly", "server_error", "", "ledger_busy"}, {{"retry-after", "1"}});
}

// GET /assets/{path}: the pages' scripts and styles (the JOSE library among them).
void ApiRoutes::asset(Call& call, const std::string& relative) {
  Headers extra = page_headers();
  extra.emplace_back("cache-control", "public, max-age=300");
  page_file(call, relative, extra);
}

void ApiRoutes::page_file(Call& call, const std::string& relative, const Headers& extra) {
  const auto& web = state_.web;
  if (!web || web->empty())
    return call.error({503, "The router's web pages are not installed (web.root: " + (web ? web->root() : "") + ")",
                       "server_error", "", "pages_not_installed"});
  const StaticFiles::File* file = web->find(relative);
  if (!file) return call.error({404, "No such file: /assets/" + relative, "invalid_request_error", "", "unknown_url"});
  Headers h{{"content-type", file->content_type}};
  h.insert(h.end(), call.base.begin(), call.base.end());
  h.insert(h.end(), extra.begin(), extra.end());
  call.responder->send_whole(200, h, file->body);
}

}  // namespace plexus
