// Package sdes decrypts SRTP whose keys were exchanged in plain SDP
// (SDES, RFC 4568: a=crypto lines), with github.com/pion/srtp/v3: how a
// capture server and smctl render play calls that would otherwise be
// noise.
package sdes

import (
	"encoding/base64"
	"net/netip"
	"strings"

	"github.com/pion/srtp/v3"
)

// Key is an SRTP master key and salt from an SDP a=crypto line (SDES,
// RFC 4568), with its protection profile.
type Key struct {
	profile   srtp.ProtectionProfile
	key, salt string // as bytes in strings, so that the struct compares
}

// ParseCrypto returns the first key of lines (a=crypto values: "TAG SUITE
// inline:BASE64[|...]") whose suite this server can decrypt.
func ParseCrypto(lines []string) (Key, bool) {
	for _, l := range lines {
		f := strings.Fields(l)
		if len(f) < 3 {
			continue
		}
		var prof srtp.ProtectionProfile
		switch f[1] {
		case "AES_CM_128_HMAC_SHA1_80":
			prof = srtp.ProtectionProfileAes128CmHmacSha1_80
		case "AES_CM_128_HMAC_SHA1_32":
			prof = srtp.ProtectionProfileAes128CmHmacSha1_32
		default:
			continue
		}
		inline, ok := strings.CutPrefix(f[2], "inline:")
		if !ok {
			continue
		}
		inline, _, _ = strings.Cut(inline, "|") // lifetime and MKI are not used
		raw, err := base64.StdEncoding.DecodeString(inline)
		if err != nil || len(raw) != 30 {
			continue
		}
		return Key{profile: prof, key: string(raw[:16]), salt: string(raw[16:])}, true
	}
	return Key{}, false
}

// streamKey names one decryption context of a worker.
type streamKey struct {
	addr      netip.AddrPort // the agent's media address
	fromAgent bool
	key       Key
}

// Decrypter holds SRTP contexts, one per media address, direction and
// key (their rollover counters and replay state are per stream); at most
// 4096, then it starts afresh. The zero value is ready. Not safe for
// concurrent use: one per capture worker.
type Decrypter struct {
	ctxs map[streamKey]*srtp.Context
	buf  []byte
}

// maxContexts bounds a worker's decryption contexts.
const maxContexts = 4096

// Decrypt returns the RTP of an SRTP packet sent (fromAgent) or received
// by the agent at addr, with key; ok is false when it cannot be
// authenticated or decrypted. The result is valid until the next call.
func (d *Decrypter) Decrypt(addr netip.AddrPort, fromAgent bool, key Key, pkt []byte) ([]byte, bool) {
	k := streamKey{addr, fromAgent, key}
	c := d.ctxs[k]
	if c == nil {
		if d.ctxs == nil || len(d.ctxs) >= maxContexts {
			d.ctxs = map[streamKey]*srtp.Context{}
		}
		var err error
		if c, err = srtp.CreateContext([]byte(key.key), []byte(key.salt), key.profile); err != nil {
			return nil, false
		}
		d.ctxs[k] = c
	}
	out, err := c.DecryptRTP(d.buf[:0], pkt, nil)
	if err != nil {
		return nil, false
	}
	d.buf = out[:cap(out)][:0]
	return out, true
}
