# kilnet: a Gemini, Gopher, Spartan and Nex server for the Keep it Local Network.
# make          build ./kilnet
# make run      install missing packages, build, serve the default dataset on loopback
# make test     the whole test suite, against the normal and the ASan/UBSan build
# make check    the same tests without installing anything: a test whose tools
#               are missing is skipped, with a line saying which
# make bench    benchmarks (not part of make test)
# make fuzz     each libFuzzer target (fuzz/) for FUZZ_SECONDS (default 60); needs clang
# make install  the binary, man pages, example config and systemd unit under PREFIX
#               (and DESTDIR); make uninstall removes them
# make deb      the Debian package (debian/), into DEB_DIR; make deb-check installs
#               it in a scratch root and tries it (tests/test_deb.sh)
#
# For packagers: CPPFLAGS, CFLAGS and LDFLAGS are yours (from the environment or
# the command line; dpkg-buildflags' hardening reaches every compile and link);
# the project's own flags go beside them, in KILNET_CPPFLAGS and KILNET_CFLAGS.
# Warnings are errors only with WERROR=1 (CI sets it). PKG_CONFIG names pkg-config.

# The version, written here only: compiled in as KILNET_VERSION. debian/changelog's
# top entry must give the same (tests/test_deb.sh checks it).
VERSION   = 0.1.0

CC       ?= cc
PKG_CONFIG ?= pkg-config
PKGS      = libevent libevent_openssl openssl libconfig libseccomp jansson
# Debian packages the build, the tests and make run need.
DEB_PKGS  = gcc make pkg-config libevent-dev libssl-dev libconfig-dev libseccomp-dev \
            libunistring-dev libjansson-dev openssl curl lynx procps iproute2 mandoc haproxy \
            libxml2-utils amfora tmux python3 etcd-server etcd-client prometheus jq
# What make deb and make deb-check need besides.
DEB_BUILD_PKGS = debhelper dpkg-dev lintian devscripts
PREFIX   ?= /usr/local
# Where make install puts things. The installed binary reads
# SYSCONFDIR/kilnet/kilnet.conf by default: /etc for PREFIX=/usr, else PREFIX/etc.
SBINDIR    ?= $(PREFIX)/sbin
MANDIR     ?= $(PREFIX)/share/man
DATADIR    ?= $(PREFIX)/share/kilnet
UNITDIR    ?= $(PREFIX)/lib/systemd/system
SYSCONFDIR ?= $(if $(filter /usr,$(PREFIX)),/etc,$(PREFIX)/etc)
STATEDIR   ?= /var/lib/kilnet
INSTALL    ?= install
# The installed binary is built apart, with its own default config path, so
# that ./kilnet (make run, make test) keeps conf/kilnet.conf.
IBUILD     ?= build/install
DEFAULT_CONF ?= conf/kilnet.conf

# pkg-config is asked once, when a recipe first needs the flags (make deps and
# make clean run without the -dev packages); when it fails, the build stops
# after pkg-config's own message.
pkg_flags  = $(call pkg_check,$(shell $(PKG_CONFIG) $(1) $(PKGS) || echo PKG_CONFIG_FAILED),$(1))
pkg_check  = $(if $(filter PKG_CONFIG_FAILED,$(1)),$(error $(PKG_CONFIG) $(2) $(PKGS) failed \
             (its message is above); make deps installs the -dev packages),$(1))
PKG_CFLAGS = $(eval PKG_CFLAGS := $(call pkg_flags,--cflags))$(PKG_CFLAGS)
PKG_LIBS   = $(eval PKG_LIBS := $(call pkg_flags,--libs))$(PKG_LIBS)

CFLAGS   ?= -O2 -g
KILNET_CPPFLAGS = -D_GNU_SOURCE -DKILNET_VERSION='"$(VERSION)"' \
            -DKILNET_DEFAULT_CONF='"$(DEFAULT_CONF)"' $(PKG_CFLAGS)
KILNET_CFLAGS = -std=c11 -Wall -Wextra $(if $(filter 1,$(WERROR)),-Werror)
# The project's flags, then the builder's. COMPILE also writes the headers an
# object includes to its .d file (included at the end); LINK links.
ALL_CFLAGS = $(KILNET_CPPFLAGS) $(CPPFLAGS) $(KILNET_CFLAGS) $(CFLAGS)
COMPILE   = $(CC) $(ALL_CFLAGS) -MMD -MP
LINK      = $(CC) $(KILNET_CFLAGS) $(CFLAGS) $(LDFLAGS)
LDLIBS   += $(PKG_LIBS) -lunistring -pthread
ASAN      = -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
# The KILNET_TEST_* environment hooks (a test's delays and forbidden calls)
# are compiled into ./kilnet and ./kilnet-asan only, never into make install's
# build or the package: code for them goes inside #ifdef KILNET_TEST_HOOKS.
TEST_HOOKS = -DKILNET_TEST_HOOKS=1

SRCS     := $(wildcard src/*.c)
OBJS     := $(SRCS:src/%.c=build/%.o)
AOBJS    := $(SRCS:src/%.c=build/asan/%.o)
TESTBINS := $(patsubst tests/%.c,tests/bin/%,$(wildcard tests/*.c)) bench/bin/loadgen bench/bin/floor

# Fuzz targets (fuzz/fuzz_NAME.c). make test replays their corpora through
# fuzz/replay.c, built with the ASan flags and the normal compiler.
FUZZ_TARGETS := gemini gopher spartan nex proxy config escape titan wire
FUZZ_SECONDS ?= 60
FUZZ_CC      ?= clang
FUZZ_SRCS    := $(filter-out src/main.c,$(SRCS))
FUZZ_CFLAGS   = -g -O1 -std=c11 -Wall -Wextra -D_GNU_SOURCE -DKILNET_ROOT='"$(CURDIR)"' \
                -DKILNET_VERSION='"$(VERSION)"' \
                $(PKG_CFLAGS) -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined
REPLAYBINS   := $(FUZZ_TARGETS:%=fuzz/bin/replay_%)
# libconfig 1.5 leaks a token on some syntax errors (fuzz/lsan.supp).
FUZZ_LSAN     = LSAN_OPTIONS=suppressions=$(CURDIR)/fuzz/lsan.supp:print_suppressions=0

.PHONY: all deps asan test test-quick check unit run bench clean fuzz

all: kilnet

kilnet: $(OBJS)
	$(LINK) -o $@ $(OBJS) $(LDLIBS)

kilnet-asan: $(AOBJS)
	$(LINK) $(ASAN) -o $@ $(AOBJS) $(LDLIBS)

asan: kilnet-asan

build/%.o: src/%.c build/version | build
	$(COMPILE) $(TEST_HOOKS) -c -o $@ $<

build/asan/%.o: src/%.c build/version | build
	$(COMPILE) $(TEST_HOOKS) $(ASAN) -c -o $@ $<

build:
	mkdir -p build/asan

# Rewritten only when VERSION changes, so objects rebuild only then.
build/version: FORCE | build
	@echo '$(VERSION)' | cmp -s - $@ || echo '$(VERSION)' >$@

tests/bin/%: tests/%.c $(wildcard tests/*.h)
	@mkdir -p tests/bin
	$(CC) $(ALL_CFLAGS) $(LDFLAGS) -o $@ $< $(LDLIBS)

# The unit tests (tests/unit/*.c): the pure modules' functions, table-driven,
# linked with the objects of each build but main.o; tests/run.sh runs
# tests/bin/unit with ./kilnet and tests/bin/unit-asan with ./kilnet-asan, and
# counts their cases in its closing line. make unit runs them alone.
UNIT_SRCS := $(wildcard tests/unit/*.c)
UNITBINS  := tests/bin/unit tests/bin/unit-asan
UNIT_CFLAGS = -DKILNET_ROOT='"$(CURDIR)"'
tests/bin/unit: $(UNIT_SRCS:tests/unit/%.c=build/unit/%.o) $(filter-out build/main.o,$(OBJS))
	@mkdir -p tests/bin
	$(LINK) -o $@ $^ $(LDLIBS)
tests/bin/unit-asan: $(UNIT_SRCS:tests/unit/%.c=build/asan/unit/%.o) $(filter-out build/asan/main.o,$(AOBJS))
	@mkdir -p tests/bin
	$(LINK) $(ASAN) -o $@ $^ $(LDLIBS)
build/unit/%.o: tests/unit/%.c build/version
	@mkdir -p build/unit
	$(COMPILE) $(UNIT_CFLAGS) -c -o $@ $<
build/asan/unit/%.o: tests/unit/%.c build/version
	@mkdir -p build/asan/unit
	$(COMPILE) $(UNIT_CFLAGS) $(ASAN) -c -o $@ $<
unit: tests/bin/unit
	./tests/bin/unit

# tests/wire_roundtrip.c calls the modules themselves: it links the server's
# objects, the ASan build's too for make test's ASan run (tests/test_wire.sh).
TESTBINS += tests/bin/wire_roundtrip-asan
tests/bin/wire_roundtrip: tests/wire_roundtrip.c $(filter-out build/main.o,$(OBJS))
	@mkdir -p tests/bin
	$(CC) $(ALL_CFLAGS) $(LDFLAGS) -o $@ $^ $(LDLIBS)

tests/bin/wire_roundtrip-asan: tests/wire_roundtrip.c $(filter-out build/asan/main.o,$(AOBJS))
	@mkdir -p tests/bin
	$(CC) $(ALL_CFLAGS) $(ASAN) $(LDFLAGS) -o $@ $^ $(LDLIBS)

# Installs only what is missing; apt-get update runs only when something is.
deps:
	@missing=; for p in $(DEB_PKGS); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'ok installed' || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "make deps: installing$$missing"; \
	  SUDO=; [ "$$(id -u)" = 0 ] || SUDO=sudo; \
	  $$SUDO apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing >/dev/null; \
	fi

# Both builds run the whole suite, side by side: the ASan/UBSan run catches memory
# errors the plain run cannot see. tests/run.sh prints the normal run as it goes,
# then the ASan run's output, then one line "N passed, N failed" for both. Each run
# has JOBS tests going at once (default 4; make test JOBS=1 for one at a time).
test: deps
	$(MAKE) kilnet kilnet-asan $(TESTBINS) $(REPLAYBINS) $(UNITBINS)
	KILNET="./kilnet ./kilnet-asan" bash tests/run.sh

# One pass against the normal build, for quick iteration.
test-quick: kilnet $(TESTBINS) $(REPLAYBINS) tests/bin/unit
	KILNET=./kilnet bash tests/run.sh $(T)

# make test without make deps: nothing is installed, and a test whose tools
# are missing (its "# needs:" line in tests/test_*.sh) is skipped with a line
# naming them. T= picks tests as for test-quick.
check:
	$(MAKE) kilnet kilnet-asan $(TESTBINS) $(REPLAYBINS) $(UNITBINS)
	KILNET_SKIP_MISSING=1 KILNET="./kilnet ./kilnet-asan" bash tests/run.sh $(T)

run: deps
	$(MAKE) kilnet
	@echo "kilnet: serving gemini://localhost:1965/, gopher://localhost:7070/,"
	@echo "        spartan://localhost:3300/ and nex://localhost:1900/ (Ctrl-C stops)"
	./kilnet -c $(DEFAULT_CONF) --hostname localhost \
	  --gemini 127.0.0.1:1965 --gopher 127.0.0.1:7070 \
	  --spartan 127.0.0.1:3300 --nex 127.0.0.1:1900

bench: deps
	-$(MAKE) kilnet
	$(MAKE) bench/bin/loadgen bench/bin/floor
	bash bench/run.sh

# The bench's load generator and floor server (bench/): OpenSSL, and libevent
# for the floor's --bufferevent mode.
bench/bin/floor: LDLIBS_BENCH = $(shell $(PKG_CONFIG) --libs libevent libevent_openssl)
bench/bin/%: bench/%.c
	@mkdir -p bench/bin
	$(CC) $(KILNET_CFLAGS) -O2 -D_GNU_SOURCE $(shell $(PKG_CONFIG) --cflags openssl) \
	  $(CPPFLAGS) $(CFLAGS) $(LDFLAGS) -o $@ $< $(LDLIBS_BENCH) $(shell $(PKG_CONFIG) --libs openssl)

# --------------------------------------------------------------- install
.PHONY: install uninstall FORCE

IOBJS      := $(SRCS:src/%.c=$(IBUILD)/%.o)
INSTALL_CONF = $(SYSCONFDIR)/kilnet/kilnet.conf
# The paths written in kilnet.8, kilnet.conf.5 and contrib/kilnet.service are
# those of PREFIX=/usr; these rewrite them for the prefix installed to.
SED_PATHS  = sed -e 's|/usr/sbin/kilnet|$(SBINDIR)/kilnet|g' \
	       -e 's|/etc/kilnet|$(SYSCONFDIR)/kilnet|g' \
	       -e 's|/usr/share/kilnet|$(DATADIR)|g' \
	       -e 's|/usr/lib/systemd/system/kilnet.service|$(UNITDIR)/kilnet.service|g' \
	       -e 's|/var/lib/kilnet|$(STATEDIR)|g'

$(IBUILD)/%.o: DEFAULT_CONF = $(INSTALL_CONF)
$(IBUILD)/kilnet: DEFAULT_CONF = $(INSTALL_CONF)
$(IBUILD)/%.o: src/%.c $(IBUILD)/conf-path
	$(COMPILE) -c -o $@ $<

$(IBUILD)/kilnet: $(IOBJS)
	$(LINK) -o $@ $(IOBJS) $(LDLIBS)

# Rewritten only when the path or the version changes, so objects rebuild only then.
$(IBUILD)/conf-path: FORCE
	@mkdir -p $(IBUILD)
	@echo '$(INSTALL_CONF) $(VERSION)' | cmp -s - $@ || echo '$(INSTALL_CONF) $(VERSION)' >$@

# The example config: certificates in the systemd unit's state folder, the
# capsule beside the config (copy the whole folder to SYSCONFDIR/kilnet/).
$(IBUILD)/kilnet.conf: conf/kilnet.conf FORCE
	@mkdir -p $(IBUILD)
	sed -e 's|^\( *cert_dir *= *\).*|\1"$(STATEDIR)";|' \
	    -e 's|^\( *capsule *= *\).*|\1"capsule";|' \
	    -e 's|^\( *state_dir *= *\).*|\1"$(STATEDIR)";|' \
	    -e 's|conf/kilnet.conf|$(INSTALL_CONF)|g' \
	    -e 's| This repo keeps$$||' \
	    -e 's|^\( *#\) both at its top level, one folder up\.$$|\1 Installed: certificates in the systemd unit'"'"'s state folder.|' \
	    conf/kilnet.conf >$@

install: $(IBUILD)/kilnet $(IBUILD)/kilnet.conf
	$(INSTALL) -d "$(DESTDIR)$(SBINDIR)" "$(DESTDIR)$(MANDIR)/man8" \
	    "$(DESTDIR)$(MANDIR)/man5" "$(DESTDIR)$(DATADIR)/capsule" \
	    "$(DESTDIR)$(UNITDIR)"
	$(INSTALL) -m 0755 $(IBUILD)/kilnet "$(DESTDIR)$(SBINDIR)/kilnet"
	$(SED_PATHS) kilnet.8 >$(IBUILD)/kilnet.8
	$(SED_PATHS) kilnet.conf.5 >$(IBUILD)/kilnet.conf.5
	$(SED_PATHS) contrib/kilnet.service >$(IBUILD)/kilnet.service
	$(INSTALL) -m 0644 $(IBUILD)/kilnet.8 "$(DESTDIR)$(MANDIR)/man8/kilnet.8"
	$(INSTALL) -m 0644 $(IBUILD)/kilnet.conf.5 "$(DESTDIR)$(MANDIR)/man5/kilnet.conf.5"
	$(INSTALL) -m 0644 $(IBUILD)/kilnet.service "$(DESTDIR)$(UNITDIR)/kilnet.service"
	$(INSTALL) -m 0644 $(IBUILD)/kilnet.conf "$(DESTDIR)$(DATADIR)/kilnet.conf"
	$(INSTALL) -m 0644 conf/network.conf "$(DESTDIR)$(DATADIR)/network.conf"
	find capsule -type f | while IFS= read -r f; do \
	  $(INSTALL) -D -m 0644 "$$f" "$(DESTDIR)$(DATADIR)/$$f" || exit 1; \
	done

# Removes what install put there: DATADIR is kilnet's own, the rest file by file.
uninstall:
	rm -f "$(DESTDIR)$(SBINDIR)/kilnet" "$(DESTDIR)$(MANDIR)/man8/kilnet.8" \
	    "$(DESTDIR)$(MANDIR)/man5/kilnet.conf.5" "$(DESTDIR)$(UNITDIR)/kilnet.service"
	rm -rf "$(DESTDIR)$(DATADIR)"

# --------------------------------------------------------------- Debian package
.PHONY: deb deb-check

# make deb builds the package (debian/, dpkg-buildpackage -us -uc -b) from a
# copy of the sources in DEB_DIR/kilnet-VERSION, so that the build starts clean
# and the .deb, .buildinfo and .changes land in DEB_DIR, not beside the repo;
# then lintian, which must find no error.
DEB_DIR ?= build/deb
DEB_SRC  = $(DEB_DIR)/kilnet-$(VERSION)
DEB_ARCH = $(shell dpkg --print-architecture 2>/dev/null)
deb:
	@$(MAKE) --no-print-directory deps DEB_PKGS="$(DEB_BUILD_PKGS)"
	rm -rf $(DEB_SRC) $(DEB_DIR)/kilnet_* $(DEB_DIR)/kilnet-dbgsym_*
	mkdir -p $(DEB_SRC)
	@# The files git knows (and new ones it does not ignore), as they are now
	@# (a file deleted but not yet committed is left out, with tar's warning).
	@if git rev-parse --git-dir >/dev/null 2>&1; then \
	  git ls-files -z --cached --others --exclude-standard | \
	    tar --null -T - --ignore-failed-read -cf - | tar -xf - -C $(DEB_SRC); \
	else \
	  tar --exclude=./build --exclude=./.git -cf - . | tar -xf - -C $(DEB_SRC); \
	fi
	cd $(DEB_SRC) && env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL dpkg-buildpackage -us -uc -b
	lintian --fail-on error --info $(DEB_DIR)/kilnet_$(VERSION)_$(DEB_ARCH).changes
	@echo "make deb: $(DEB_DIR)/kilnet_$(VERSION)_$(DEB_ARCH).deb"

# Builds the package, then installs it in a scratch root (a copy-on-write
# overlay of this system in its own mount, PID and network namespaces) and
# tries it there: tests/test_deb.sh, test_deb_package.
deb-check: deb
	@rm -f $(DEB_DIR)/deb-check.log
	@KILNET_DEB=$(DEB_DIR)/kilnet_$(VERSION)_$(DEB_ARCH).deb KILNET=./kilnet \
	  bash tests/run.sh test_deb_; rc=$$?; \
	  if [ $$rc = 0 ] && [ -f $(DEB_DIR)/deb-check.log ]; then \
	    echo "# what test_deb_package saw:"; sed 's/^/  /' $(DEB_DIR)/deb-check.log; fi; \
	  exit $$rc

fuzz/bin/replay_%: fuzz/fuzz_%.c fuzz/replay.c fuzz/fuzz.h $(filter-out build/asan/main.o,$(AOBJS))
	@mkdir -p fuzz/bin
	$(CC) $(ALL_CFLAGS) $(ASAN) -DKILNET_ROOT='"$(CURDIR)"' $(LDFLAGS) -o $@ fuzz/fuzz_$*.c \
	  fuzz/replay.c $(filter-out build/asan/main.o,$(AOBJS)) $(LDLIBS)

fuzz/bin/fuzz_%: fuzz/fuzz_%.c fuzz/fuzz.h $(FUZZ_SRCS) src/kilnet.h
	@mkdir -p fuzz/bin
	$(FUZZ_CC) $(FUZZ_CFLAGS) $(LDFLAGS) -o $@ fuzz/fuzz_$*.c $(FUZZ_SRCS) $(LDLIBS)

# Each target runs FUZZ_SECONDS from its seed corpus (fuzz/corpus/NAME/); new
# inputs go to fuzz/work/NAME/ (not kept), a crash is written into the seed
# corpus as crash-*, where make test replays it from then on. Every target runs
# even when one fails; make fuzz fails if any did.
fuzz:
	@$(MAKE) --no-print-directory deps DEB_PKGS="clang libclang-rt-dev"
	$(MAKE) $(FUZZ_TARGETS:%=fuzz/bin/fuzz_%)
	@failed=; for t in $(FUZZ_TARGETS); do \
	  mkdir -p fuzz/work/$$t; \
	  echo "make fuzz: $$t for $(FUZZ_SECONDS) s"; \
	  $(FUZZ_LSAN) ./fuzz/bin/fuzz_$$t -max_total_time=$(FUZZ_SECONDS) -timeout=10 \
	    -print_final_stats=1 -artifact_prefix=fuzz/corpus/$$t/ \
	    fuzz/work/$$t fuzz/corpus/$$t >fuzz/work/$$t.log 2>&1 || failed="$$failed $$t"; \
	  tail -n 3 fuzz/work/$$t.log; \
	done; \
	if [ -n "$$failed" ]; then echo "make fuzz: FAILED:$$failed (see fuzz/work/*.log)"; exit 1; fi; \
	echo "make fuzz: every target ran clean for $(FUZZ_SECONDS) s"

clean:
	rm -rf build kilnet kilnet-asan tests/bin bench/bin fuzz/bin fuzz/work

# The headers each object was built from (-MMD -MP): a changed header rebuilds
# the objects that include it, and only those.
-include $(OBJS:.o=.d) $(AOBJS:.o=.d) $(IOBJS:.o=.d) \
    $(UNIT_SRCS:tests/unit/%.c=build/unit/%.d) $(UNIT_SRCS:tests/unit/%.c=build/asan/unit/%.d)
