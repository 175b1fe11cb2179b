package relay

import (
	"encoding/json"
	"fmt"
	"maps"
	"strings"
	"testing"
)

// TestSessionNoticePayloadTypes: a notice's payload types are read
// whatever their entries hold: bad entries (a type outside 0 to 127 or
// not in plain decimal, an empty, long or unsafe name, a value that is not
// a string) are left out and counted, entries beyond MaxPayloadTypes too,
// and the rest of the notice is kept.
func TestSessionNoticePayloadTypes(t *testing.T) {
	many := map[string]string{}
	for pt := 0; pt < 40; pt++ {
		many[fmt.Sprint(pt)] = "PCMU/8000"
	}
	manyJSON, _ := json.Marshal(many)
	for _, tc := range []struct {
		name    string
		types   string
		want    map[uint8]string
		dropped int
	}{
		{"good", `{"96":"G729/8000","101":"telephone-event/8000","0":"PCMU/8000"}`,
			map[uint8]string{96: "G729/8000", 101: "telephone-event/8000", 0: "PCMU/8000"}, 0},
		{"absent", `null`, nil, 0},
		{"empty", `{}`, nil, 0},
		{"hostile", `{"96":"G729/8000","128":"PCMU/8000","300":"x","-1":"x","abc":"x","096":"x","+97":"x",` +
			`"98":"","99":"a b","100":"` + strings.Repeat("a", MaxEncodingLen+1) + `","102":"<script>","103":"PCMU\u0000",` +
			`"104":7,"105":{"a":1},"106":null,"107":"` + strings.Repeat("a", MaxEncodingLen) + `"}`,
			map[uint8]string{96: "G729/8000", 107: strings.Repeat("a", MaxEncodingLen)}, 14},
		{"too many", string(manyJSON), func() map[uint8]string {
			m := map[uint8]string{}
			for pt := 0; pt < MaxPayloadTypes; pt++ {
				m[uint8(pt)] = "PCMU/8000"
			}
			return m
		}(), 40 - MaxPayloadTypes},
	} {
		t.Run(tc.name, func(t *testing.T) {
			body := `{"session":"s1","agent":"1001","state":"codecs","payload_types":` + tc.types + `}`
			var n SessionNotice
			if err := DecodeJSON(MsgSession, []byte(body), &n); err != nil {
				t.Fatalf("decode: %v", err)
			}
			if n.Session != "s1" || n.Agent != "1001" || n.State != SessionCodecs {
				t.Fatalf("notice %+v lost its other fields", n)
			}
			if !maps.Equal(n.PayloadTypes.Types, tc.want) || n.PayloadTypes.Dropped != tc.dropped {
				t.Fatalf("types %v dropped %d, want %v dropped %d", n.PayloadTypes.Types, n.PayloadTypes.Dropped, tc.want, tc.dropped)
			}
		})
	}
	// Not an object: the notice is malformed.
	var n SessionNotice
	if err := DecodeJSON(MsgSession, []byte(`{"session":"s1","state":"codecs","payload_types":[1,2]}`), &n); err == nil {
		t.Fatal("payload types that are an array decoded without error")
	}
}

// TestPayloadTypeMapEncode: encoding writes the valid entries in order,
// within the bounds, and leaves out an empty map.
func TestPayloadTypeMapEncode(t *testing.T) {
	n := SessionNotice{Session: "s1", State: SessionStarted,
		PayloadTypes: PayloadTypeMap{Types: map[uint8]string{101: "telephone-event/8000", 96: "G729/8000", 200: "PCMU/8000", 97: "a\"b"}}}
	b, err := json.Marshal(n)
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"session":"s1","state":"started","payload_types":{"96":"G729/8000","101":"telephone-event/8000"}}`; string(b) != want {
		t.Fatalf("got %s, want %s", b, want)
	}
	b, _ = json.Marshal(SessionNotice{Session: "s1", State: SessionStarted})
	if strings.Contains(string(b), "payload_types") {
		t.Fatalf("notice without types: %s", b)
	}
}

// FuzzSessionNotice: decoding any notice body never panics, and what it
// keeps of the payload types is within the bounds.
func FuzzSessionNotice(f *testing.F) {
	f.Add([]byte(`{"session":"s1","state":"started","payload_types":{"96":"G729/8000","101":"telephone-event/8000"}}`))
	f.Add([]byte(`{"session":"s1","state":"codecs","payload_types":{"300":"x","-1":"y","96":7}}`))
	f.Add([]byte(`{"payload_types":null}`))
	f.Add([]byte(`{"payload_types":{"":""}}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		var n SessionNotice
		if DecodeJSON(MsgSession, body, &n) != nil {
			return
		}
		if len(n.PayloadTypes.Types) > MaxPayloadTypes || n.PayloadTypes.Dropped < 0 {
			t.Fatalf("types %v dropped %d", n.PayloadTypes.Types, n.PayloadTypes.Dropped)
		}
		for pt, name := range n.PayloadTypes.Types {
			if pt > 127 || !ValidEncoding(name) {
				t.Fatalf("kept %d=%q", pt, name)
			}
		}
		if _, err := json.Marshal(n); err != nil {
			t.Fatal(err)
		}
	})
}
