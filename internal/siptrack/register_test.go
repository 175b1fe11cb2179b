package siptrack

import (
	"fmt"
	"net/netip"
	"reflect"
	"testing"
	"time"
)

func register(callID string, cseq int, ext string, extra ...string) []byte {
	h := []string{
		"Via: SIP/2.0/UDP 10.10.0.11:5060;branch=z9hG4bKr" + fmt.Sprint(cseq),
		fmt.Sprintf("From: <sip:%s@pbx.example>;tag=r1", ext),
		fmt.Sprintf("To: <sip:%s@pbx.example>", ext),
		"Call-ID: " + callID,
		fmt.Sprintf("CSeq: %d REGISTER", cseq),
	}
	return sipMsg("REGISTER sip:pbx.example SIP/2.0", append(h, extra...), "")
}

func registerReply(callID string, cseq, code int, ext string, extra ...string) []byte {
	h := []string{
		"Via: SIP/2.0/UDP 10.10.0.11:5060;branch=z9hG4bKr" + fmt.Sprint(cseq),
		fmt.Sprintf("From: <sip:%s@pbx.example>;tag=r1", ext),
		fmt.Sprintf("To: <sip:%s@pbx.example>;tag=srv", ext),
		"Call-ID: " + callID,
		fmt.Sprintf("CSeq: %d REGISTER", cseq),
	}
	reason := map[int]string{200: "OK", 401: "Unauthorized", 403: "Forbidden"}[code]
	return sipMsg(fmt.Sprintf("SIP/2.0 %d %s", code, reason), append(h, extra...), "")
}

type regWant struct {
	ext, contact, source string
	expires              time.Duration // after the 200 OK
}

func regsOf(s *Snapshot) []regWant {
	var out []regWant
	for _, r := range s.Registrations {
		out = append(out, regWant{r.Extension, r.Contact.String(), r.Source.String(), r.Expires.Sub(r.Learned)})
	}
	return out
}

// TestRegistration: REGISTER and its 200 OK bind an extension to its
// contact, with the expiry from the contact parameter, the Expires header
// or the default; Expires 0 and the wildcard remove; nothing is bound
// before the 200 OK or after a failure.
func TestRegistration(t *testing.T) {
	natted := netip.MustParseAddrPort("198.51.100.7:61000")
	tests := []struct {
		name string
		run  func(f *feeder)
		want []regWant
	}{
		{"Expires header", func(f *feeder) {
			f.udp(phone1001, pbx, register("r1", 1, "1001", "Contact: <sip:1001@10.10.0.11:5060>", "Expires: 600"))
			f.udp(pbx, phone1001, registerReply("r1", 1, 200, "1001", "Contact: <sip:1001@10.10.0.11:5060>;expires=600"))
		}, []regWant{{"1001", "10.10.0.11:5060", "10.10.0.11:5060", 600 * time.Second}}},
		{"contact parameter wins over the header", func(f *feeder) {
			f.udp(phone1001, pbx, register("r1", 1, "1001", "Contact: <sip:1001@10.10.0.11:5062>;expires=120", "Expires: 3600"))
			f.udp(pbx, phone1001, registerReply("r1", 1, 200, "1001", "Expires: 3600"))
		}, []regWant{{"1001", "10.10.0.11:5062", "10.10.0.11:5060", 120 * time.Second}}},
		{"registrar's contact list with its expiry", func(f *feeder) {
			f.udp(phone1001, pbx, register("r1", 1, "1001", "Contact: <sip:1001@10.10.0.11>", "Expires: 3600"))
			f.udp(pbx, phone1001, registerReply("r1", 1, 200, "1001", "Contact: <sip:1001@10.10.0.11>;expires=300"))
		}, []regWant{{"1001", "10.10.0.11:5060", "10.10.0.11:5060", 300 * time.Second}}},
		{"default expiry", func(f *feeder) {
			f.udp(phone1001, pbx, register("r1", 1, "1001", "Contact: <sip:1001@10.10.0.11:5060>"))
			f.udp(pbx, phone1001, registerReply("r1", 1, 200, "1001"))
		}, []regWant{{"1001", "10.10.0.11:5060", "10.10.0.11:5060", time.Hour}}},
		{"not bound before the 200 OK", func(f *feeder) {
			f.udp(phone1001, pbx, register("r1", 1, "1001", "Contact: <sip:1001@10.10.0.11:5060>"))
		}, nil},
		{"challenge then 200", func(f *feeder) {
			f.udp(phone1001, pbx, register("r1", 1, "1001", "Contact: <sip:1001@10.10.0.11:5060>", "Expires: 60"))
			f.udp(pbx, phone1001, registerReply("r1", 1, 401, "1001", `WWW-Authenticate: Digest realm="pbx", nonce="1"`))
			f.udp(phone1001, pbx, register("r1", 2, "1001", "Contact: <sip:1001@10.10.0.11:5060>", "Expires: 60", `Authorization: Digest username="1001"`))
			f.udp(pbx, phone1001, registerReply("r1", 2, 200, "1001"))
		}, []regWant{{"1001", "10.10.0.11:5060", "10.10.0.11:5060", time.Minute}}},
		{"403 binds nothing", func(f *feeder) {
			f.udp(phone1001, pbx, register("r1", 1, "1001", "Contact: <sip:1001@10.10.0.11:5060>"))
			f.udp(pbx, phone1001, registerReply("r1", 1, 403, "1001"))
		}, nil},
		{"Expires 0 removes", func(f *feeder) {
			f.udp(phone1001, pbx, register("r1", 1, "1001", "Contact: <sip:1001@10.10.0.11:5060>"))
			f.udp(pbx, phone1001, registerReply("r1", 1, 200, "1001"))
			f.udp(phone1001, pbx, register("r1", 2, "1001", "Contact: <sip:1001@10.10.0.11:5060>", "Expires: 0"))
			f.udp(pbx, phone1001, registerReply("r1", 2, 200, "1001"))
		}, nil},
		{"wildcard with Expires 0 removes every binding", func(f *feeder) {
			f.udp(phone1001, pbx, register("r1", 1, "1001", "Contact: <sip:1001@10.10.0.11:5060>"))
			f.udp(pbx, phone1001, registerReply("r1", 1, 200, "1001"))
			f.udp(phone1002, pbx, register("r2", 1, "1001", "Contact: <sip:1001@10.10.0.12:5060>"))
			f.udp(pbx, phone1002, registerReply("r2", 1, 200, "1001"))
			f.udp(phone1001, pbx, register("r1", 2, "1001", "Contact: *", "Expires: 0"))
			f.udp(pbx, phone1001, registerReply("r1", 2, 200, "1001"))
		}, nil},
		{"the registrar's list is authoritative", func(f *feeder) {
			f.udp(phone1001, pbx, register("r1", 1, "1001", "Contact: <sip:1001@10.10.0.11:5060>"))
			f.udp(pbx, phone1001, registerReply("r1", 1, 200, "1001", "Contact: <sip:1001@10.10.0.11:5060>;expires=60"))
			f.udp(phone1002, pbx, register("r2", 1, "1001", "Contact: <sip:1001@10.10.0.12:5060>"))
			f.udp(pbx, phone1002, registerReply("r2", 1, 200, "1001", "Contact: <sip:1001@10.10.0.12:5060>;expires=60"))
		}, []regWant{{"1001", "10.10.0.12:5060", "10.10.0.12:5060", time.Minute}}},
		{"two contacts in one header", func(f *feeder) {
			f.udp(phone1001, pbx, register("r1", 1, "1001", "Contact: <sip:1001@10.10.0.11:5060>;expires=60, <sip:1001@10.10.0.12:5060>;expires=30"))
			f.udp(pbx, phone1001, registerReply("r1", 1, 200, "1001"))
		}, []regWant{{"1001", "10.10.0.11:5060", "10.10.0.11:5060", time.Minute}, {"1001", "10.10.0.12:5060", "10.10.0.11:5060", 30 * time.Second}}},
		{"contact by name: the source address", func(f *feeder) {
			f.udp(natted, pbx, register("r1", 1, "1001", "Contact: <sip:1001@phone-1001.example;transport=udp>", "Expires: 60"))
			f.udp(pbx, natted, registerReply("r1", 1, 200, "1001"))
		}, []regWant{{"1001", "198.51.100.7:61000", "198.51.100.7:61000", time.Minute}}},
		{"200 OK alone (REGISTER not seen)", func(f *feeder) {
			f.udp(pbx, phone1002, registerReply("r9", 7, 200, "1002", "Contact: <sip:1002@10.10.0.12:5060>;expires=90"))
		}, []regWant{{"1002", "10.10.0.12:5060", "10.10.0.12:5060", 90 * time.Second}}},
		{"compact contact header", func(f *feeder) {
			f.udp(phone1001, pbx, register("r1", 1, "1001", "m: <sip:1001@10.10.0.11:5070>", "Expires: 60"))
			f.udp(pbx, phone1001, registerReply("r1", 1, 200, "1001"))
		}, []regWant{{"1001", "10.10.0.11:5070", "10.10.0.11:5060", time.Minute}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFeeder(t, Config{})
			tc.run(f)
			if got := regsOf(f.tr.Snapshot()); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("registrations = %+v, want %+v", got, tc.want)
			}
		})
	}
}

// TestRegistrationExpiry: Expire drops a binding at its expiry, not
// before; a refresh extends it without calling OnChange.
func TestRegistrationExpiry(t *testing.T) {
	changes := 0
	f := newFeeder(t, Config{OnChange: func() { changes++ }})
	f.udp(phone1001, pbx, register("r1", 1, "1001", "Contact: <sip:1001@10.10.0.11:5060>", "Expires: 60"))
	f.udp(pbx, phone1001, registerReply("r1", 1, 200, "1001"))
	if changes != 1 {
		t.Fatalf("OnChange called %d times for a new binding, want 1", changes)
	}
	learned := f.tr.Snapshot().Registrations[0].Learned
	f.tr.Expire(learned.Add(59 * time.Second))
	if n := len(f.tr.Snapshot().Registrations); n != 1 {
		t.Fatalf("%d registrations before expiry, want 1", n)
	}
	f.ts = learned.Add(30 * time.Second)
	f.udp(phone1001, pbx, register("r1", 2, "1001", "Contact: <sip:1001@10.10.0.11:5060>", "Expires: 60"))
	f.udp(pbx, phone1001, registerReply("r1", 2, 200, "1001"))
	if changes != 1 {
		t.Errorf("OnChange called for a refresh")
	}
	f.tr.Expire(learned.Add(61 * time.Second))
	if n := len(f.tr.Snapshot().Registrations); n != 1 {
		t.Fatalf("refreshed binding expired at its old expiry")
	}
	f.tr.Expire(learned.Add(91 * time.Second))
	if n := len(f.tr.Snapshot().Registrations); n != 0 {
		t.Fatalf("%d registrations after expiry, want 0", n)
	}
	if changes != 2 {
		t.Errorf("OnChange called %d times, want 2 (binding added, expired)", changes)
	}
}
