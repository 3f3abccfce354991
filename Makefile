# iotop_ext: test, benchmark, install.
PREFIX ?= /usr/local
DESTDIR ?=
PYTHON ?= python3
MAN8 = $(DESTDIR)$(PREFIX)/share/man/man8
# Every CPython 3.6-3.13 on PATH that runs (pyenv: see README); python3 alone otherwise.
VERSIONS = 3.6 3.7 3.8 3.9 3.10 3.11 3.12 3.13

.PHONY: test bench install uninstall

# pyenv puts shims for every installed version on PATH; those not selected
# fail when run: each is skipped with one line.
test:
	@status=0; ran=; \
	for v in $(VERSIONS); do \
		py=$$(command -v python$$v) || continue; \
		if ! why=$$($$py -c '' 2>&1); then \
			echo "== python$$v skipped: $$(echo "$$why" | head -n 1)"; continue; \
		fi; \
		ran=1; echo "== $$py ($$($$py -c 'import platform; print(platform.python_version())'))"; \
		$$py test_iotop_ext.py || status=1; \
	done; \
	if [ -z "$$ran" ]; then echo "== $(PYTHON)"; $(PYTHON) test_iotop_ext.py || status=1; fi; \
	exit $$status

# make bench BENCH_THREADS="10000 30000": per-thread cost at 30,000 against 10,000.
BENCH_THREADS ?= 10000
BENCH_ROUNDS ?= 5
BENCH_PEERS ?= iotop-c iotop

bench:
	$(PYTHON) test_iotop_ext.py --bench "$(BENCH_THREADS)" "$(BENCH_ROUNDS)" "$(BENCH_PEERS)"

install:
	install -D -m 0755 iotop_ext.py $(DESTDIR)$(PREFIX)/sbin/iotop_ext
	install -d $(MAN8)
	$(PYTHON) iotop_ext.py --man > $(MAN8)/iotop_ext.8.tmp
	mv $(MAN8)/iotop_ext.8.tmp $(MAN8)/iotop_ext.8
	chmod 0644 $(MAN8)/iotop_ext.8

uninstall:
	rm -f $(DESTDIR)$(PREFIX)/sbin/iotop_ext $(MAN8)/iotop_ext.8
