package auth

import (
	"crypto/x509"
	"encoding/asn1"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
)

// SubjectName is a certificate's subject as an RFC 2253 string, the user name of its $external
// user: "emailAddress=mailer@example.com,CN=mailer,O=Acme,C=US".
//
// It is derived from the certificate's raw subject bytes, never from a parsed pkix.Name (which
// drops attributes Go does not know and reorders the rest), and reads exactly as
// `openssl x509 -noout -subject -nameopt RFC2253` prints it, which is what mongod matches
// $external users against (MongoDB manual, "Use x.509 Certificates to Authenticate Clients"):
//   - the RDNs in reverse order of the encoding (RFC 2253 §2.1), the attributes of a
//     multi-valued RDN joined by "+" (reversed too, as OpenSSL does);
//   - OpenSSL's short names (CN, C, O, OU, emailAddress, UID, DC, ...) and the dotted OID of any
//     other attribute, whose value is then written as "#" and the hex of its DER encoding
//     (RFC 2253 §2.4); so is a known attribute whose value is not a string type;
//   - `,+"\<>;` escaped with a backslash, as are a leading "#" or space and a trailing space;
//     control characters and every byte of a non-ASCII character's UTF-8 form as \XX.
//
// An error means the subject is not a valid DER Name.
func SubjectName(cert *x509.Certificate) (string, error) {
	return RDNString(cert.RawSubject)
}

// atv is one AttributeTypeAndValue (RFC 5280 §4.1.2.4).
type atv struct {
	Type  asn1.ObjectIdentifier
	Value asn1.RawValue
}

// rdnSET is one RelativeDistinguishedName; the SET suffix makes encoding/asn1 read a SET OF.
type rdnSET []atv

// RDNString formats a DER-encoded X.501 Name (a certificate's RawSubject or RawIssuer) as
// SubjectName describes.
func RDNString(der []byte) (string, error) {
	var seq []rdnSET
	rest, err := asn1.Unmarshal(der, &seq)
	if err != nil {
		return "", fmt.Errorf("certificate subject: %w", err)
	}
	if len(rest) != 0 {
		return "", errors.New("certificate subject: trailing data after the Name")
	}
	var b strings.Builder
	for i := len(seq) - 1; i >= 0; i-- {
		rdn := seq[i]
		if len(rdn) == 0 {
			return "", errors.New("certificate subject: empty RDN")
		}
		for j := len(rdn) - 1; j >= 0; j-- {
			switch {
			case j < len(rdn)-1:
				b.WriteByte('+')
			case i < len(seq)-1:
				b.WriteByte(',')
			}
			writeATV(&b, rdn[j])
		}
	}
	return b.String(), nil
}

func writeATV(b *strings.Builder, a atv) {
	name, known := shortNames[a.Type.String()]
	if !known {
		name = a.Type.String()
	}
	b.WriteString(name)
	b.WriteByte('=')
	if known {
		if runes, ok := decodeString(a.Value); ok {
			escape2253(b, runes)
			return
		}
	}
	b.WriteByte('#')
	const hexDigits = "0123456789ABCDEF"
	for _, c := range a.Value.FullBytes {
		b.WriteByte(hexDigits[c>>4])
		b.WriteByte(hexDigits[c&15])
	}
}

// ASN.1 universal tags of the directory string types.
const (
	tagNumeric   = 18
	tagT61       = 20
	tagVisible   = 26
	tagUniversal = 28
	tagBMP       = 30
)

// decodeString reads a directory string as code points. One-byte string types are read as
// Latin-1, as OpenSSL does; an invalid UTF8String, BMPString or UniversalString is not a string.
func decodeString(v asn1.RawValue) ([]rune, bool) {
	if v.Class != asn1.ClassUniversal || v.IsCompound {
		return nil, false
	}
	switch v.Tag {
	case asn1.TagUTF8String:
		if !utf8.Valid(v.Bytes) {
			return nil, false
		}
		return []rune(string(v.Bytes)), true
	case asn1.TagPrintableString, asn1.TagIA5String, tagT61, tagNumeric, tagVisible:
		out := make([]rune, len(v.Bytes))
		for i, c := range v.Bytes {
			out[i] = rune(c)
		}
		return out, true
	case tagBMP:
		if len(v.Bytes)%2 != 0 {
			return nil, false
		}
		u := make([]uint16, len(v.Bytes)/2)
		for i := range u {
			u[i] = binary.BigEndian.Uint16(v.Bytes[2*i:])
		}
		return utf16.Decode(u), true
	case tagUniversal:
		if len(v.Bytes)%4 != 0 {
			return nil, false
		}
		out := make([]rune, len(v.Bytes)/4)
		for i := range out {
			r := binary.BigEndian.Uint32(v.Bytes[4*i:])
			if r > utf8.MaxRune {
				return nil, false
			}
			out[i] = rune(r)
		}
		return out, true
	}
	return nil, false
}

// escape2253 writes a value with RFC 2253 §2.4 escaping as OpenSSL's RFC2253 name option does
// it (ESC_2253, ESC_CTRL, ESC_MSB over UTF-8).
func escape2253(b *strings.Builder, runes []rune) {
	const hexDigits = "0123456789ABCDEF"
	var buf [utf8.UTFMax]byte
	for i, r := range runes {
		switch {
		case r >= 0x80:
			n := utf8.EncodeRune(buf[:], r)
			for _, c := range buf[:n] {
				b.WriteByte('\\')
				b.WriteByte(hexDigits[c>>4])
				b.WriteByte(hexDigits[c&15])
			}
		case r < 0x20 || r == 0x7f:
			b.WriteByte('\\')
			b.WriteByte(hexDigits[r>>4])
			b.WriteByte(hexDigits[r&15])
		case strings.ContainsRune(",+\"\\<>;", r),
			// OpenSSL marks the last character "last", not "first", so a lone "#" stays bare.
			r == '#' && i == 0 && i < len(runes)-1,
			r == ' ' && (i == 0 || i == len(runes)-1):
			b.WriteByte('\\')
			b.WriteRune(r)
		default:
			b.WriteRune(r)
		}
	}
}

// shortNames are OpenSSL's short names of the attribute types a subject commonly holds
// (OpenSSL's objects.txt); any other type prints as its dotted OID.
var shortNames = map[string]string{
	"2.5.4.3":                    "CN",
	"2.5.4.4":                    "SN",
	"2.5.4.5":                    "serialNumber",
	"2.5.4.6":                    "C",
	"2.5.4.7":                    "L",
	"2.5.4.8":                    "ST",
	"2.5.4.9":                    "street",
	"2.5.4.10":                   "O",
	"2.5.4.11":                   "OU",
	"2.5.4.12":                   "title",
	"2.5.4.13":                   "description",
	"2.5.4.15":                   "businessCategory",
	"2.5.4.17":                   "postalCode",
	"2.5.4.18":                   "postOfficeBox",
	"2.5.4.41":                   "name",
	"2.5.4.42":                   "GN",
	"2.5.4.43":                   "initials",
	"2.5.4.44":                   "generationQualifier",
	"2.5.4.46":                   "dnQualifier",
	"2.5.4.65":                   "pseudonym",
	"2.5.4.97":                   "organizationIdentifier",
	"1.2.840.113549.1.9.1":       "emailAddress",
	"1.2.840.113549.1.9.2":       "unstructuredName",
	"0.9.2342.19200300.100.1.1":  "UID",
	"0.9.2342.19200300.100.1.25": "DC",
	"1.3.6.1.4.1.311.60.2.1.1":   "jurisdictionL",
	"1.3.6.1.4.1.311.60.2.1.2":   "jurisdictionST",
	"1.3.6.1.4.1.311.60.2.1.3":   "jurisdictionC",
}
