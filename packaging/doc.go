// Package packaging holds what silentmon's Debian packages are made of:
// the systemd units (systemd/), the configuration file both services read
// (etc/silentmon.yaml), the maintainer scripts (scripts/) and the program
// that builds the packages with nfpm (mkpkg, run by make package). Its
// test builds the packages, installs them on this machine with dpkg, runs
// the installed smserver as the silentmon user and purges them again.
package packaging
