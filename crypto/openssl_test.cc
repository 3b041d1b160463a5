#include "crypto/openssl.h"

#include <gtest/gtest.h>
#include <openssl/err.h>
#include <openssl/pem.h>

namespace e2eid::crypto {
namespace {

TEST(OpenSslTest, ErrorDrainsQueueWithReason) {
  // Parsing garbage as PEM raises an error on this thread's queue.
  auto bio = MemBioOver(std::string_view("not pem"));
  ASSERT_TRUE(bio);
  X509Ptr cert(PEM_read_bio_X509(bio->get(), nullptr, nullptr, nullptr));
  ASSERT_FALSE(cert);
  ASSERT_NE(ERR_peek_error(), 0u);
  Error e = OpenSslError("reading certificate");
  EXPECT_EQ(e.code(), ErrorCode::kCrypto);
  EXPECT_EQ(e.detail().rfind("reading certificate: ", 0), 0u) << e.detail();
  EXPECT_NE(e.detail().find("no start line"), std::string::npos) << e.detail();
  EXPECT_EQ(ERR_peek_error(), 0u) << "queue must be drained";
}

TEST(OpenSslTest, ErrorWithEmptyQueueAndCustomCode) {
  ClearOpenSslErrors();
  Error e = OpenSslError("nothing", ErrorCode::kMalformed);
  EXPECT_EQ(e.code(), ErrorCode::kMalformed);
  EXPECT_EQ(e.detail(), "nothing: unknown OpenSSL error");
}

TEST(OpenSslTest, BioToStringReadsMemoryBio) {
  auto bio = NewMemBio();
  ASSERT_TRUE(bio);
  EXPECT_EQ(BioToString(bio->get()), "");
  ASSERT_EQ(BIO_write(bio->get(), "hello\0world", 11), 11);
  EXPECT_EQ(BioToString(bio->get()), std::string("hello\0world", 11));
  EXPECT_EQ(BioToString(nullptr), "");
}

TEST(OpenSslTest, MemBioOverReadsBack) {
  const std::string data = "abc";
  auto bio = MemBioOver(data);
  ASSERT_TRUE(bio);
  char buf[8] = {};
  EXPECT_EQ(BIO_read(bio->get(), buf, sizeof(buf)), 3);
  EXPECT_EQ(std::string(buf, 3), "abc");
  auto empty = MemBioOver(std::string_view());
  ASSERT_TRUE(empty);
  EXPECT_LE(BIO_read(empty->get(), buf, sizeof(buf)), 0);
}

TEST(OpenSslTest, Asn1TimeRoundTripAndForms) {
  const TimePoint t = FromUnix(1700000000);  // 2023-11-14T22:13:20Z
  auto a = Asn1TimeFromTimePoint(t);
  ASSERT_TRUE(a);
  EXPECT_EQ(ASN1_STRING_type(a->get()), V_ASN1_UTCTIME);
  auto back = Asn1TimeToTimePoint(a->get());
  ASSERT_TRUE(back);
  EXPECT_EQ(ToUnix(*back), 1700000000);

  const TimePoint late = FromUnix(2556144000);  // 2051-01-01T00:00:00Z
  auto g = Asn1TimeFromTimePoint(late);
  ASSERT_TRUE(g);
  EXPECT_EQ(ASN1_STRING_type(g->get()), V_ASN1_GENERALIZEDTIME);
  auto back2 = Asn1TimeToTimePoint(g->get());
  ASSERT_TRUE(back2);
  EXPECT_EQ(ToUnix(*back2), 2556144000);
}

TEST(OpenSslTest, Asn1TimeRejectsGarbage) {
  Asn1TimePtr t(ASN1_TIME_new());
  ASSERT_TRUE(t);
  ASSERT_EQ(ASN1_STRING_set(t.get(), "not a time", 10), 1);
  auto r = Asn1TimeToTimePoint(t.get());
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), ErrorCode::kMalformed);
  EXPECT_FALSE(Asn1TimeToTimePoint(nullptr));
}

TEST(OpenSslTest, Asn1IntegerRoundTrip) {
  const Bytes serial = {0x00, 0x8f, 0x01, 0x02, 0x03};
  auto i = Asn1IntegerFromBytes(serial);
  ASSERT_TRUE(i);
  auto back = Asn1IntegerToBytes(i->get());
  ASSERT_TRUE(back);
  EXPECT_EQ(*back, (Bytes{0x8f, 0x01, 0x02, 0x03}));  // leading zero dropped, stays positive
  EXPECT_EQ(ASN1_INTEGER_get(i->get()), 0x8f010203);

  auto zero = Asn1IntegerFromBytes({});
  ASSERT_TRUE(zero);
  auto zb = Asn1IntegerToBytes(zero->get());
  ASSERT_TRUE(zb);
  EXPECT_EQ(*zb, Bytes{0});
}

TEST(OpenSslTest, Asn1IntegerRejectsNegative) {
  Asn1IntegerPtr i(ASN1_INTEGER_new());
  ASSERT_TRUE(i);
  ASSERT_EQ(ASN1_INTEGER_set(i.get(), -5), 1);
  auto r = Asn1IntegerToBytes(i.get());
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), ErrorCode::kMalformed);
}

}  // namespace
}  // namespace e2eid::crypto
