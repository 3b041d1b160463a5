#include "crypto/der.h"

#include <gtest/gtest.h>

namespace e2eid::crypto::der {
namespace {

// Expects kMalformed whose detail contains `needle`.
template <typename T>
void ExpectMalformed(const Result<T>& r, std::string_view needle) {
  ASSERT_FALSE(r) << "accepted, expected an error containing '" << needle << "'";
  EXPECT_EQ(r.error().code(), ErrorCode::kMalformed);
  EXPECT_NE(r.error().detail().find(needle), std::string::npos) << r.error().detail();
  EXPECT_EQ(r.error().detail().rfind("DER: ", 0), 0u) << r.error().detail();
}

Bytes Concat(std::initializer_list<Bytes> parts) {
  Bytes out;
  for (const auto& p : parts) out.insert(out.end(), p.begin(), p.end());
  return out;
}

TEST(DerReaderTest, ReadsShortAndLongForms) {
  const Bytes data = {0x02, 0x01, 0x05, 0x04, 0x00};
  Reader r(data);
  ASSERT_EQ(r.PeekTag(), std::optional<uint8_t>(0x02));
  auto a = r.Next("a");
  ASSERT_TRUE(a) << a.error().ToString();
  EXPECT_EQ(a->tag, kInteger);
  EXPECT_EQ(Bytes(a->contents.begin(), a->contents.end()), Bytes{0x05});
  EXPECT_EQ(a->encoding.size(), 3u);
  auto b = r.Next(kOctetString, "b");
  ASSERT_TRUE(b);
  EXPECT_TRUE(b->contents.empty());
  EXPECT_TRUE(r.empty());
  EXPECT_TRUE(r.ExpectEnd("all"));
  EXPECT_EQ(r.PeekTag(), std::nullopt);

  // 0x81 0x80: 128 bytes, the smallest long form.
  Bytes long_form = {0x04, 0x81, 0x80};
  long_form.resize(3 + 128, 0xaa);
  auto e = ReadExactlyOne(long_form, kOctetString, "long");
  ASSERT_TRUE(e) << e.error().ToString();
  EXPECT_EQ(e->contents.size(), 128u);
  // 0x82 0x01 0x00: 256 bytes.
  Bytes two = {0x04, 0x82, 0x01, 0x00};
  two.resize(4 + 256, 0x01);
  auto t = ReadExactlyOne(two, kOctetString, "two");
  ASSERT_TRUE(t) << t.error().ToString();
  EXPECT_EQ(t->contents.size(), 256u);
}

TEST(DerReaderTest, RefusesHostileLengthsAndTags) {
  struct Case {
    const char* name;
    Bytes data;
    const char* needle;
  };
  Bytes long_but_short(3 + 127, 0x00);
  long_but_short[0] = 0x04;
  long_but_short[1] = 0x81;
  long_but_short[2] = 0x7f;  // 127 must use the short form
  Bytes leading_zero(4 + 200, 0x00);
  leading_zero[0] = 0x04;
  leading_zero[1] = 0x82;
  leading_zero[2] = 0x00;  // 0x00 0xc8: leading zero octet
  leading_zero[3] = 0xc8;
  const std::vector<Case> cases = {
      {"empty", {}, "missing"},
      {"tag only", {0x30}, "truncated (no length)"},
      {"indefinite", {0x30, 0x80, 0x02, 0x01, 0x00, 0x00, 0x00}, "indefinite length"},
      {"length past the end", {0x04, 0x05, 0x01, 0x02}, "exceeds the 2 remaining bytes"},
      {"length one past the end", {0x04, 0x02, 0x01}, "exceeds"},
      {"long form truncated", {0x04, 0x82, 0x01}, "truncated (length octets)"},
      {"long form below 128", long_but_short, "not minimal"},
      {"leading zero length octet", leading_zero, "leading zero"},
      {"five length octets", {0x04, 0x85, 0x01, 0x00, 0x00, 0x00, 0x00}, "too large"},
      {"huge length", {0x04, 0x84, 0xff, 0xff, 0xff, 0xff, 0x00}, "exceeds"},
      {"eight length octets",
       {0x04, 0x88, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff},
       "too large"},
      {"0xff length octet count", {0x04, 0xff, 0x00}, "too large"},
      {"high tag number", {0x1f, 0x81, 0x00, 0x00}, "high-tag-number"},
      {"context high tag number", {0xbf, 0x22, 0x00}, "high-tag-number"},
      {"end-of-contents", {0x00, 0x00}, "end-of-contents"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    Reader r(c.data);
    ExpectMalformed(r.Next("x"), c.needle);
  }
}

TEST(DerReaderTest, ExactlyOneRefusesTrailingBytesAndWrongTags) {
  ExpectMalformed(ReadExactlyOne(Bytes{0x05, 0x00, 0x00}, kNull, "null"), "trailing bytes");
  ExpectMalformed(ReadExactlyOne(Bytes{0x05, 0x00}, kSequence, "seq"), "expected tag 0x30");
  ExpectMalformed(ReadExactlyOne(Bytes{}, kSequence, "seq"), "missing");
  EXPECT_TRUE(ReadExactlyOne(Bytes{0x05, 0x00}, kNull, "null"));
  // A wrong tag consumes nothing.
  const Bytes data = {0x05, 0x00};
  Reader r(data);
  EXPECT_FALSE(r.Next(kInteger, "int"));
  auto opt = r.Optional(kInteger, "int");
  ASSERT_TRUE(opt);
  EXPECT_FALSE(opt->has_value());
  auto null = r.Optional(kNull, "null");
  ASSERT_TRUE(null);
  EXPECT_TRUE(null->has_value());
  auto end = r.Optional(kNull, "null");
  ASSERT_TRUE(end);
  EXPECT_FALSE(end->has_value());
}

TEST(DerReaderTest, NestedLengthCannotEscapeItsParent) {
  // SEQUENCE of length 3 whose inner OCTET STRING claims 5 bytes: the inner reader sees only the
  // parent's contents.
  const Bytes data = {0x30, 0x03, 0x04, 0x05, 0x01, 0x02, 0x03, 0x04, 0x05};
  Reader outer(data);
  auto seq = outer.Next(kSequence, "seq");
  ASSERT_TRUE(seq);
  Reader inner(seq->contents);
  ExpectMalformed(inner.Next("inner"), "exceeds");
}

TEST(DerContentTest, UnsignedInteger) {
  auto value = [](Bytes contents) {
    Bytes enc = Concat({{kInteger, static_cast<uint8_t>(contents.size())}, contents});
    Reader r(enc);
    auto e = r.Next("i");
    EXPECT_TRUE(e);
    auto v = UnsignedInteger(*e, "i");
    return v ? Result<Bytes>(Bytes(v->begin(), v->end())) : Result<Bytes>(Fail(v.error()));
  };
  EXPECT_EQ(*value({0x00}), Bytes{0x00});
  EXPECT_EQ(*value({0x7f}), Bytes{0x7f});
  EXPECT_EQ(*value({0x00, 0x80}), Bytes{0x80});
  EXPECT_EQ(*value({0x01, 0x00}), (Bytes{0x01, 0x00}));
  ExpectMalformed(value({}), "empty INTEGER");
  ExpectMalformed(value({0x00, 0x7f}), "not minimally encoded");
  ExpectMalformed(value({0x00, 0x00}), "not minimally encoded");
  ExpectMalformed(value({0xff, 0x80}), "not minimally encoded");
  ExpectMalformed(value({0x80}), "negative");
  ExpectMalformed(value({0xff}), "negative");
  ExpectMalformed(UnsignedInteger(Element{kOctetString, {}, {}}, "i"), "not an INTEGER");
}

TEST(DerContentTest, BitStringBooleanAndOid) {
  const Bytes bits = {0x00, 0xaa, 0xbb};
  auto b = BitStringBytes(Element{kBitString, bits, {}}, "b");
  ASSERT_TRUE(b);
  EXPECT_EQ(Bytes(b->begin(), b->end()), (Bytes{0xaa, 0xbb}));
  ExpectMalformed(BitStringBytes(Element{kBitString, {}, {}}, "b"), "unused-bits octet");
  const Bytes unused = {0x01, 0xaa};
  ExpectMalformed(BitStringBytes(Element{kBitString, unused, {}}, "b"), "unused bits");

  const Bytes t = {0xff};
  const Bytes f = {0x00};
  const Bytes one = {0x01};
  EXPECT_EQ(*Boolean(Element{kBoolean, t, {}}, "b"), true);
  EXPECT_EQ(*Boolean(Element{kBoolean, f, {}}, "b"), false);
  ExpectMalformed(Boolean(Element{kBoolean, one, {}}, "b"), "0x00 or 0xff");
  ExpectMalformed(Boolean(Element{kBoolean, {}, {}}, "b"), "0x00 or 0xff");

  // 2.5.4.3, 1.2.840.113549.1.9.14, 2.16.840.1.113730.3.1.241, 2.999.3 (first arc 2, Y >= 40)
  EXPECT_EQ(*OidToText(Bytes{0x55, 0x04, 0x03}), "2.5.4.3");
  EXPECT_EQ(*OidToText(Bytes{0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x09, 0x0e}),
            "1.2.840.113549.1.9.14");
  EXPECT_EQ(*OidToText(Bytes{0x60, 0x86, 0x48, 0x01, 0x86, 0xf8, 0x42, 0x03, 0x01, 0x81, 0x71}),
            "2.16.840.1.113730.3.1.241");
  EXPECT_EQ(*OidToText(Bytes{0x88, 0x37, 0x03}), "2.999.3");
  ExpectMalformed(OidToText(Bytes{}), "empty");
  ExpectMalformed(OidToText(Bytes{0x55, 0x84}), "ends inside an arc");
  ExpectMalformed(OidToText(Bytes{0x55, 0x80, 0x04}), "not minimal");
  ExpectMalformed(OidToText(Bytes{0x80, 0x55}), "not minimal");
  Bytes huge = {0x55};
  for (int i = 0; i < 10; ++i) huge.push_back(0xff);
  huge.push_back(0x7f);
  ExpectMalformed(OidToText(huge), "too large");
  ExpectMalformed(Oid(Element{kInteger, Bytes{0x01}, {}}, "o"), "not an OBJECT IDENTIFIER");
}

TEST(DerWriterTest, WritesMinimalForms) {
  Bytes out;
  AppendElement(out, kOctetString, Bytes(5, 0x01));
  EXPECT_EQ(out.size(), 7u);
  EXPECT_EQ(out[1], 0x05);

  out.clear();
  AppendElement(out, kOctetString, Bytes(128, 0x01));
  EXPECT_EQ((Bytes{out[0], out[1], out[2]}), (Bytes{0x04, 0x81, 0x80}));
  EXPECT_TRUE(ReadExactlyOne(out, kOctetString, "w"));

  out.clear();
  AppendElement(out, kOctetString, Bytes(70000, 0x01));
  EXPECT_EQ((Bytes{out[1], out[2], out[3], out[4]}), (Bytes{0x83, 0x01, 0x11, 0x70}));
  auto back = ReadExactlyOne(out, kOctetString, "w");
  ASSERT_TRUE(back);
  EXPECT_EQ(back->contents.size(), 70000u);

  out.clear();
  AppendUnsignedInteger(out, Bytes{});
  AppendUnsignedInteger(out, Bytes{0x00, 0x00, 0x7f});
  AppendUnsignedInteger(out, Bytes{0x80});
  EXPECT_EQ(out, (Bytes{0x02, 0x01, 0x00, 0x02, 0x01, 0x7f, 0x02, 0x02, 0x00, 0x80}));

  out.clear();
  AppendBitString(out, Bytes{0xab});
  EXPECT_EQ(out, (Bytes{0x03, 0x02, 0x00, 0xab}));
}

}  // namespace
}  // namespace e2eid::crypto::der
