package tls

import (
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"fmt"
	"strings"
	"time"
)

// Fingerprint returns the SHA-256 fingerprint of a DER certificate as
// upper-case hex pairs separated by colons, as openssl x509 -fingerprint
// -sha256 prints it.
func Fingerprint(der []byte) string {
	sum := sha256.Sum256(der)
	h := strings.ToUpper(hex.EncodeToString(sum[:]))
	var b strings.Builder
	b.Grow(len(h) + len(h)/2)
	for i := 0; i < len(h); i += 2 {
		if i > 0 {
			b.WriteByte(':')
		}
		b.WriteString(h[i : i+2])
	}
	return b.String()
}

var extUsageNames = map[x509.ExtKeyUsage]string{
	x509.ExtKeyUsageAny:             "any",
	x509.ExtKeyUsageServerAuth:      "server authentication",
	x509.ExtKeyUsageClientAuth:      "client authentication",
	x509.ExtKeyUsageCodeSigning:     "code signing",
	x509.ExtKeyUsageEmailProtection: "email protection",
	x509.ExtKeyUsageTimeStamping:    "time stamping",
	x509.ExtKeyUsageOCSPSigning:     "OCSP signing",
}

func usageNames(c *x509.Certificate) string {
	var out []string
	for _, u := range c.ExtKeyUsage {
		if n, ok := extUsageNames[u]; ok {
			out = append(out, n)
		} else {
			out = append(out, fmt.Sprintf("usage %d", u))
		}
	}
	for _, o := range c.UnknownExtKeyUsage {
		out = append(out, o.String())
	}
	if len(out) == 0 {
		return "unrestricted"
	}
	return strings.Join(out, ", ")
}

func keyUsageNames(c *x509.Certificate) string {
	names := []struct {
		bit  x509.KeyUsage
		name string
	}{
		{x509.KeyUsageDigitalSignature, "digital signature"},
		{x509.KeyUsageContentCommitment, "content commitment"},
		{x509.KeyUsageKeyEncipherment, "key encipherment"},
		{x509.KeyUsageDataEncipherment, "data encipherment"},
		{x509.KeyUsageKeyAgreement, "key agreement"},
		{x509.KeyUsageCertSign, "certificate signing"},
		{x509.KeyUsageCRLSign, "CRL signing"},
	}
	var out []string
	for _, n := range names {
		if c.KeyUsage&n.bit != 0 {
			out = append(out, n.name)
		}
	}
	if len(out) == 0 {
		return "none"
	}
	return strings.Join(out, ", ")
}

func keyDescription(c *x509.Certificate) string {
	switch k := c.PublicKey.(type) {
	case *ecdsa.PublicKey:
		return "ECDSA " + k.Curve.Params().Name
	case *rsa.PublicKey:
		return fmt.Sprintf("RSA %d", k.N.BitLen())
	}
	return c.PublicKeyAlgorithm.String()
}

// Describe renders c for people: subject, issuer, serial, key, SANs,
// usages, validity (with its state at now) and SHA-256 fingerprint, one
// "Name: value" per line.
func Describe(c *x509.Certificate, now time.Time) string {
	var b strings.Builder
	const ts = "2006-01-02 15:04:05 MST"
	fmt.Fprintf(&b, "Subject:      %s\n", c.Subject)
	fmt.Fprintf(&b, "Issuer:       %s\n", c.Issuer)
	fmt.Fprintf(&b, "Serial:       %s\n", strings.ToUpper(c.SerialNumber.Text(16)))
	fmt.Fprintf(&b, "Key:          %s\n", keyDescription(c))
	var sans []string
	for _, d := range c.DNSNames {
		sans = append(sans, "DNS:"+d)
	}
	for _, ip := range c.IPAddresses {
		sans = append(sans, "IP:"+ip.String())
	}
	for _, e := range c.EmailAddresses {
		sans = append(sans, "email:"+e)
	}
	for _, u := range c.URIs {
		sans = append(sans, "URI:"+u.String())
	}
	if len(sans) == 0 {
		sans = []string{"none"}
	}
	fmt.Fprintf(&b, "SANs:         %s\n", strings.Join(sans, ", "))
	fmt.Fprintf(&b, "Roles:        %s\n", describeRoles(c))
	fmt.Fprintf(&b, "CA:           %t\n", c.IsCA)
	fmt.Fprintf(&b, "Key usage:    %s\n", keyUsageNames(c))
	fmt.Fprintf(&b, "Ext. usage:   %s\n", usageNames(c))
	state := "valid"
	switch {
	case now.After(c.NotAfter):
		state = "EXPIRED"
	case now.Before(c.NotBefore):
		state = "NOT YET VALID"
	}
	fmt.Fprintf(&b, "Not before:   %s\n", c.NotBefore.UTC().Format(ts))
	fmt.Fprintf(&b, "Not after:    %s (%s)\n", c.NotAfter.UTC().Format(ts), state)
	fmt.Fprintf(&b, "SHA-256:      %s\n", Fingerprint(c.Raw))
	return b.String()
}

// describeRoles names c's silentmon roles, and those it carries without
// the usages they need.
func describeRoles(c *x509.Certificate) string {
	roles := RolesOf(c)
	if len(roles) == 0 {
		return "none (made before roles existed, or not for silentmon)"
	}
	out := make([]string, len(roles))
	for i, r := range roles {
		out[i] = string(r)
		if _, err := CheckRole(c, "", r); err != nil {
			out[i] += " (lacks the usage it needs)"
		}
	}
	return strings.Join(out, ", ")
}
