package capturetest_test

import (
	"net/netip"
	"testing"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"

	"github.com/silentmon/silentmon/capture/capturetest"
)

// TestDNS decodes the built messages with gopacket's DNS layer.
func TestDNS(t *testing.T) {
	addr := netip.MustParseAddr("192.0.2.10")
	tests := []struct {
		name    string
		msg     []byte
		id      uint16
		qr      bool
		qname   string
		qtype   layers.DNSType
		answer  netip.Addr
		ttl     uint32
		opcode  layers.DNSOpCode
		rd, ra  bool
		nbnsRaw string // the decoded NetBIOS name, for NBNS
	}{
		{name: "query", msg: capturetest.DNS{ID: 0x8008, Flags: 0x0100, Name: "sip.example.com"}.Bytes(),
			id: 0x8008, qname: "sip.example.com", qtype: layers.DNSTypeA, rd: true},
		{name: "mDNS PTR query", msg: capturetest.DNS{ID: 0xa000, Name: "_sip._udp.local", Type: 12}.Bytes(),
			id: 0xa000, qname: "_sip._udp.local", qtype: layers.DNSTypePTR},
		{name: "response", msg: capturetest.DNS{ID: 7, Flags: 0x8180, Name: "pbx.example", Answer: addr, TTL: 3600}.Bytes(),
			id: 7, qr: true, qname: "pbx.example", qtype: layers.DNSTypeA, answer: addr, ttl: 3600, rd: true, ra: true},
		{name: "NBNS", msg: capturetest.NBNSQuery(0x9b00, "PHONE1"),
			id: 0x9b00, qtype: 0x20, rd: true, nbnsRaw: "PHONE1         \x00"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var d layers.DNS
			if err := d.DecodeFromBytes(tt.msg, gopacket.NilDecodeFeedback); err != nil {
				t.Fatalf("decode %x: %v", tt.msg, err)
			}
			if d.ID != tt.id || d.QR != tt.qr || d.OpCode != tt.opcode || d.RD != tt.rd || d.RA != tt.ra {
				t.Errorf("header id %#x qr %v opcode %v rd %v ra %v, want %#x %v %v %v %v", d.ID, d.QR, d.OpCode, d.RD, d.RA, tt.id, tt.qr, tt.opcode, tt.rd, tt.ra)
			}
			if len(d.Questions) != 1 || d.Questions[0].Type != tt.qtype || d.Questions[0].Class != layers.DNSClassIN {
				t.Fatalf("questions %+v, want one of type %v, class IN", d.Questions, tt.qtype)
			}
			q := string(d.Questions[0].Name)
			if tt.nbnsRaw != "" {
				var raw []byte
				for i := 0; i+1 < len(q); i += 2 {
					raw = append(raw, (q[i]-'A')<<4|(q[i+1]-'A'))
				}
				q = string(raw)
				if q != tt.nbnsRaw {
					t.Errorf("NetBIOS name %q, want %q", q, tt.nbnsRaw)
				}
			} else if q != tt.qname {
				t.Errorf("question %q, want %q", q, tt.qname)
			}
			if !tt.answer.IsValid() {
				if len(d.Answers) != 0 {
					t.Errorf("answers %+v, want none", d.Answers)
				}
				return
			}
			if len(d.Answers) != 1 {
				t.Fatalf("answers %+v, want one", d.Answers)
			}
			a := d.Answers[0]
			if got, _ := netip.AddrFromSlice(a.IP); string(a.Name) != tt.qname || a.Type != layers.DNSTypeA || a.TTL != tt.ttl || got.Unmap() != tt.answer {
				t.Errorf("answer %s %v TTL %d %v, want %s A TTL %d %v", a.Name, a.Type, a.TTL, a.IP, tt.qname, tt.ttl, tt.answer)
			}
		})
	}
}
