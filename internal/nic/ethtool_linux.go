package nic

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"strings"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Offload features that matter for VLAN capture, by their kernel names
// (ethtool -k shows the first two as rx-vlan-offload and tx-vlan-offload).
const (
	FeatureRxVLANParse  = "rx-vlan-hw-parse"  // the NIC strips the tag and reports it out of band
	FeatureTxVLANInsert = "tx-vlan-hw-insert" // the NIC inserts a tag given out of band
	FeatureRxVLANFilter = "rx-vlan-filter"    // the NIC drops VLANs not configured on it
	FeatureRxSVLANParse = "rx-vlan-stag-hw-parse"
)

// State is an interface's state as the kernel reports it.
type State struct {
	Name  string `json:"name"`
	Index int    `json:"index"`
	MAC   string `json:"mac"`
	// Driver is the driver name from ETHTOOL_GDRVINFO, if it answers.
	Driver string `json:"driver,omitempty"`
	// Up is IFF_UP: the interface is administratively up.
	Up bool `json:"up"`
	// Running is IFF_RUNNING: the link is up (carrier present).
	Running bool `json:"running"`
	// Promiscuous is IFF_PROMISC as the administrator set it; the
	// receiver turns promiscuous mode on for itself either way
	// (PACKET_MR_PROMISC), which this flag does not show.
	Promiscuous bool `json:"promiscuous"`
	// Features holds the VLAN-related offload features and whether each
	// is active, read with ETHTOOL_GSTRINGS and ETHTOOL_GFEATURES. It is
	// nil when the driver does not answer.
	Features map[string]bool `json:"features,omitempty"`
	// FeaturesError says why Features is nil.
	FeaturesError string `json:"features_error,omitempty"`
}

// Feature reports whether the named feature is known and active.
func (s *State) Feature(name string) (active, known bool) {
	active, known = s.Features[name]
	return active, known
}

// ReadState reads the state of interface name.
func ReadState(name string, o Options) (State, error) {
	var st State
	fd, _, _, err := openPacket(name, o, func(fd, _ int) (err error) {
		st, err = stateOf(fd, name)
		return err
	})
	if err == nil {
		unix.Close(fd)
	}
	return st, err
}

// stateOf reads the state of name through fd, a socket in the interface's
// namespace.
func stateOf(fd int, name string) (State, error) {
	st := State{Name: name}
	idx, mac, err := lookup(fd, name)
	if err != nil {
		return st, err
	}
	st.Index = idx
	st.MAC = FormatMAC(mac)
	ifr, _ := unix.NewIfreq(name)
	if err := unix.IoctlIfreq(fd, unix.SIOCGIFFLAGS, ifr); err != nil {
		return st, fmt.Errorf("reading the flags of %q: %w", name, mapErrno(err))
	}
	flags := ifr.Uint16()
	st.Up = flags&unix.IFF_UP != 0
	st.Running = flags&unix.IFF_RUNNING != 0
	// IFF_RUNNING follows the carrier through the link watcher, up to a
	// second late; ETHTOOL_GLINK asks the driver now.
	if link, err := linkUp(fd, name); err == nil && st.Up {
		st.Running = link
	}
	st.Promiscuous = flags&unix.IFF_PROMISC != 0
	if di, err := unix.IoctlGetEthtoolDrvinfo(fd, name); err == nil {
		st.Driver = unix.ByteSliceToString(di.Driver[:])
	}
	feats, err := features(fd, name)
	if err != nil {
		st.FeaturesError = err.Error()
	} else {
		st.Features = make(map[string]bool)
		for k, v := range feats {
			if strings.Contains(k, "vlan") {
				st.Features[k] = v
			}
		}
	}
	return st, nil
}

// lookup returns the index and MAC of interface name.
func lookup(fd int, name string) (int, [6]byte, error) {
	var mac [6]byte
	ifr, err := unix.NewIfreq(name)
	if err != nil || name == "" {
		return 0, mac, fmt.Errorf("interface %q: %w (names have 1 to 15 characters)", name, ErrNoInterface)
	}
	if err := unix.IoctlIfreq(fd, unix.SIOCGIFINDEX, ifr); err != nil {
		return 0, mac, fmt.Errorf("interface %q: %w", name, mapErrno(err))
	}
	idx := int(ifr.Uint32())
	ifr, _ = unix.NewIfreq(name)
	if err := unix.IoctlIfreq(fd, unix.SIOCGIFHWADDR, ifr); err != nil {
		return 0, mac, fmt.Errorf("reading the MAC address of %q: %w", name, mapErrno(err))
	}
	// struct sockaddr: family (the ARPHRD_ hardware type), then the address.
	raw := (*[unix.IFNAMSIZ + 8]byte)(unsafe.Pointer(ifr)) // name, family, the first 6 address bytes
	copy(mac[:], raw[unix.IFNAMSIZ+2:unix.IFNAMSIZ+8])
	if hw := binary.NativeEndian.Uint16(raw[unix.IFNAMSIZ:]); hw != unix.ARPHRD_ETHER {
		return idx, mac, fmt.Errorf("interface %q has hardware type %d: %w", name, hw, ErrNotEthernet)
	}
	return idx, mac, nil
}

// ifreqData is struct ifreq carrying a pointer in ifr_data, for SIOCETHTOOL.
type ifreqData struct {
	name [unix.IFNAMSIZ]byte
	data unsafe.Pointer
	_    [24 - unsafe.Sizeof(uintptr(0))]byte
}

func ethtool(fd int, name string, buf []byte) error {
	var ifr ifreqData
	copy(ifr.name[:], name)
	ifr.data = unsafe.Pointer(&buf[0])
	_, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), unix.SIOCETHTOOL, uintptr(unsafe.Pointer(&ifr)))
	if errno != 0 {
		return errno
	}
	return nil
}

const (
	ethSSFeatures  = 4 // ETH_SS_FEATURES
	ethGStringLen  = 32
	maxFeatureBits = 1024
)

// features returns every offload feature of interface name and whether it
// is active.
func features(fd int, name string) (map[string]bool, error) {
	ne := binary.NativeEndian
	// struct ethtool_sset_info { u32 cmd; u32 reserved; u64 sset_mask; u32 data[]; }
	info := make([]byte, 16+4)
	ne.PutUint32(info[0:], unix.ETHTOOL_GSSET_INFO)
	ne.PutUint64(info[8:], 1<<ethSSFeatures)
	if err := ethtool(fd, name, info); err != nil {
		return nil, fmt.Errorf("ETHTOOL_GSSET_INFO on %q: %w", name, err)
	}
	if ne.Uint64(info[8:])&(1<<ethSSFeatures) == 0 {
		return nil, fmt.Errorf("ETHTOOL_GSSET_INFO on %q: no feature names", name)
	}
	n := int(ne.Uint32(info[16:]))
	if n <= 0 || n > maxFeatureBits {
		return nil, fmt.Errorf("ETHTOOL_GSSET_INFO on %q: %d features", name, n)
	}
	// struct ethtool_gstrings { u32 cmd; u32 string_set; u32 len; u8 data[]; }
	strs := make([]byte, 12+n*ethGStringLen)
	ne.PutUint32(strs[0:], unix.ETHTOOL_GSTRINGS)
	ne.PutUint32(strs[4:], ethSSFeatures)
	ne.PutUint32(strs[8:], uint32(n))
	if err := ethtool(fd, name, strs); err != nil {
		return nil, fmt.Errorf("ETHTOOL_GSTRINGS on %q: %w", name, err)
	}
	// struct ethtool_gfeatures { u32 cmd; u32 size; struct { u32 available,
	// requested, active, never_changed; } features[size]; }
	blocks := (n + 31) / 32
	gf := make([]byte, 8+blocks*16)
	ne.PutUint32(gf[0:], unix.ETHTOOL_GFEATURES)
	ne.PutUint32(gf[4:], uint32(blocks))
	if err := ethtool(fd, name, gf); err != nil {
		return nil, fmt.Errorf("ETHTOOL_GFEATURES on %q: %w", name, err)
	}
	out := make(map[string]bool, n)
	for i := 0; i < n; i++ {
		s := strs[12+i*ethGStringLen : 12+(i+1)*ethGStringLen]
		if j := bytes.IndexByte(s, 0); j >= 0 {
			s = s[:j]
		}
		if len(s) == 0 {
			continue
		}
		active := ne.Uint32(gf[8+(i/32)*16+8:])
		out[string(s)] = active&(1<<(i%32)) != 0
	}
	return out, nil
}

// linkUp asks the driver whether the link is up (ETHTOOL_GLINK).
func linkUp(fd int, name string) (bool, error) {
	// struct ethtool_value { u32 cmd; u32 data; }
	var v [8]byte
	binary.NativeEndian.PutUint32(v[0:], unix.ETHTOOL_GLINK)
	if err := ethtool(fd, name, v[:]); err != nil {
		return false, err
	}
	return binary.NativeEndian.Uint32(v[4:]) != 0, nil
}
