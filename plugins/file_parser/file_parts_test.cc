// What the file-parser reads of a request is the client's: any shape. Found by the file_parts
// fuzzer: a part whose "type" was an object (a duplicate key), and a message that was no object,
// threw out of the plugin.
#include "file_parts.hpp"

#include <gtest/gtest.h>

namespace plexus::file_parser {
namespace {

TEST(FileParts, FieldsOfAnyTypeAreReadSafely) {
  TextCache cache(16, 1 << 20);
  Limits limits;
  for (const char* body : {
           R"({"model":"m","messages":[{"role":"user","content":[{"type":"file","type":{"x":1}}]}]})",
           R"({"model":"m","messages":[{"role":"user","content":[{"type":7}]}],"plugins":[{"id":5}]})",
           R"({"model":"m","messages":[{"role":"user","content":[{"type":"file","file":{"filename":3,"file_data":"data:text/plain;base64,aGk="}}]}]})",
           R"({"model":"m","messages":["file"]})",  // found by the fuzzer: a message that is no object threw
           R"({"model":"m","messages":[7,null,{"role":"user"}]})",
       }) {
    std::variant<Rewritten, Error> out;
    EXPECT_NO_THROW(out = replace_file_parts(body, limits, cache, "file-parser")) << body;
    if (auto* e = std::get_if<Error>(&out)) EXPECT_EQ(e->status, 400) << body;
  }
}

}  // namespace
}  // namespace plexus::file_parser
