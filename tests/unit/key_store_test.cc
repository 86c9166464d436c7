#include "auth/key_store.hpp"

#include <gtest/gtest.h>

#include "auth/sha256.hpp"

namespace plexus {
namespace {

TEST(Sha256, KnownVector) {
  EXPECT_EQ(to_hex(sha256("abc")), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  auto parsed = parse_sha256_hex("BA7816BF8F01CFEA414140DE5DAE2223B00361A396177A9CB410FF61F20015AD");
  ASSERT_TRUE(parsed);
  EXPECT_EQ(*parsed, sha256("abc"));
  EXPECT_FALSE(parse_sha256_hex("xyz"));
  EXPECT_FALSE(parse_sha256_hex(std::string(64, 'g')));
}

// FIPS 180-2's other examples: the empty message, two blocks, and a million bytes.
TEST(Sha256, MultiBlockVectors) {
  EXPECT_EQ(to_hex(sha256("")), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(to_hex(sha256("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq")),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  EXPECT_EQ(to_hex(sha256(std::string(1000000, 'a'))), "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

TEST(Sha256, SameDigestComparesEveryByte) {
  Sha256 a = sha256("abc");
  EXPECT_TRUE(same_digest(a, sha256("abc")));
  for (std::size_t i : {std::size_t{0}, std::size_t{17}, a.size() - 1}) {
    Sha256 b = a;
    b[i] ^= 1;
    EXPECT_FALSE(same_digest(a, b)) << "byte " << i;
  }
}

TEST(KeyStore, MatchesOnlyTheRightKeyAndReportsItsGroup) {
  KeyStore store({{"a", sha256("sk-alpha-key"), "public", false, "", ""}, {"b", sha256("sk-beta-key"), "team", false, "", ""}});
  EXPECT_TRUE(store.enabled());
  auto b = store.authenticate("sk-beta-key");
  ASSERT_TRUE(b);
  EXPECT_EQ(b->key_id, "b");
  EXPECT_EQ(b->group, "team");
  EXPECT_FALSE(store.authenticate("sk-beta-ke"));
  EXPECT_FALSE(store.authenticate(""));
  EXPECT_FALSE(store.authenticate(to_hex(sha256("sk-beta-key"))));
  EXPECT_FALSE(KeyStore({}).enabled());
}

TEST(BearerToken, ParsesTheSchemeCaseInsensitively) {
  EXPECT_EQ(bearer_token("Bearer sk-1"), "sk-1");
  EXPECT_EQ(bearer_token("bearer   sk-1  "), "sk-1");
  EXPECT_EQ(bearer_token("BEARER sk-1"), "sk-1");
  EXPECT_EQ(bearer_token("Basic abc"), "");
  EXPECT_EQ(bearer_token(std::string("Bearer\0sk-1", 11)), "");
  EXPECT_EQ(bearer_token("Bearer\tsk-1"), "");
  EXPECT_EQ(bearer_token("Bearef sk-1"), "");
  EXPECT_EQ(bearer_token("Bearer"), "");
  EXPECT_EQ(bearer_token(""), "");
}

}  // namespace
}  // namespace plexus
