package auth

import "crypto/x509"

// SubjectName is a certificate's subject as an RFC 2253 string, the user name of its
// $external user: "CN=client,OU=SPI,O=TestOrg,C=US".
func SubjectName(cert *x509.Certificate) string {
	return cert.Subject.ToRDNSequence().String()
}
