# Debian packages for the scripts (source this file).

# apt_missing PKG...: prints, one per line, the packages dpkg does not have installed.
apt_missing() {
  local p
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || echo "$p"
  done
}

# apt_install TAG PKG...: installs the packages (through sudo when not root); nothing to do without any.
apt_install() {
  local tag="$1"
  shift
  [ $# -gt 0 ] || return 0
  local sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  echo "$tag: installing $*"
  DEBIAN_FRONTEND=noninteractive $sudo apt-get update -q
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends "$@"
}
