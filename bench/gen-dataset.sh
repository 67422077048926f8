#!/usr/bin/env bash
# bench/gen-dataset.sh: writes a kilnet dataset (the network group of
# conf/network.conf) with N member councils to stdout, for the scale tests
# (tests/test_scale.sh) and for measuring load time, memory and page sizes:
#
#   bench/gen-dataset.sh 10000 >/tmp/net-10000.conf
#   bench/gen-dataset.sh N [SEED]   (same N and SEED: the same bytes)
#
# Each member has a unique id, a name, a spokesperson and role, one to three
# statement paragraphs of two to four sentences (about 1.1 KB a member in all,
# with the seed's punctuation: ’ “ ” £ –), and, for most, a joined date and for
# some an updated one, in no order, so the feed has entries to sort. A config
# that serves it is the usual server group and `@include "FILE"` (tests/lib.sh:
# DATASET=FILE write_conf ...). Only bash and awk: no python on CI machines.
set -eu

usage() { echo "usage: $0 N [SEED]  (N members, 1 or more)" >&2; exit 2; }
[ $# -ge 1 ] && [ $# -le 2 ] || usage
[[ $1 =~ ^[1-9][0-9]{0,6}$ ]] || usage
[[ ${2:-1} =~ ^[0-9]{1,9}$ ]] || usage

# LC_ALL=C: awk counts bytes and compares as bytes, the same on every machine.
LC_ALL=C exec awk -v n="$1" -v seed="${2:-1}" '
# Park-Miller: exact in the doubles every awk computes with (16807 * 2^31 is
# far below 2^53), so mawk and gawk give the same dataset; awk rand() differs.
function rnd(k) { state = (state * 16807) % 2147483647; return int(state / 2147483647 * k) }
function pick(arr, cnt) { return arr[1 + rnd(cnt)] }
function slug(s,   t) {
	t = tolower(s); gsub(/[^a-z0-9]+/, "-", t); gsub(/^-+|-+$/, "", t); return t
}
# Day number since 2018-01-01 -> "YYYY-MM-DD".
function leap(y) { return y % 4 == 0 && (y % 100 != 0 || y % 400 == 0) }
function date(d,   y, m, len, ml) {
	split("31 28 31 30 31 30 31 31 30 31 30 31", ml, " ")
	for (y = 2018; d >= 365 + leap(y); y++)
		d -= 365 + leap(y)
	for (m = 1; d >= (len = ml[m] + (m == 2 && leap(y))); m++)
		d -= len
	return sprintf("%04d-%02d-%02d", y, m, d + 1)
}
function words(s, arr) { return split(s, arr, "|") }
function sentence(place,   t) {
	t = pick(S, nS)
	gsub(/@P/, place, t)
	gsub(/@N/, (2 + rnd(48)) "", t)
	gsub(/@M/, (1 + rnd(90)) "", t)
	return t
}
function paragraph(place, first, last,   k, i, p) {
	k = 2 + rnd(4)
	p = ""
	for (i = 0; i < k; i++)
		p = p (i ? " " : "") sentence(place)
	if (first) p = "“" p
	if (last) p = p "”"
	return p
}
BEGIN {
	state = (seed * 7919 + 12345) % 2147483646 + 1
	nA = words("Ash|Brad|Cald|Kirk|Rother|Old|New|Wal|Hather|Bur|Mal|Hal|Wake|Don|Brig|Chester|Dar|Dur|Glou|Hex|Ilk|Kend|Lan|Mans|Nor|Pen|Read|Sal|Shep|Stam|Tam|Tewk|Ux|Ware|Whit|Wims|Yeo|Alder|Bever|Clith", A)
	nB = words("ford|ham|ley|ton|field|bury|wick|mouth|dale|by|stow|combe|worth|minster|borough|caster", B)
	nD = words("North |South |East |West |Upper |Lower |Greater |Mid ||||||||||", D)
	nK = words("City Council|Borough Council|District Council|County Council|Metropolitan Borough Council|Council|Town Council|Council|Borough Council", K)
	nF = words("Susan|Marvin|Tim|Philip|Shaun|Paul|Nick|Jean|Sean|Toby|Janet|Amina|Rebecca|Daniel|Priya|Owen|Fatima|Gareth|Helen|Imran|Joanne|Kwame|Lucy|Mohammed|Niamh|Oliver|Rachel|Sanjay|Tracey|Yusuf|Abena|Bronwen|Callum|Deborah|Eilidh|Farhan", F)
	nL = words("Hinchcliffe|Rees|Swift|Glanville|Davies|Egan|Forbes|Morrison|Fenwick|Whitehead|Ahmed|Okafor|Patel|Roberts|Thompson|Walsh|Kaur|Hughes|O’Brien|Jenkins|Clarke|Mensah|Lloyd|Begum|Campbell|Evans|Murphy|Singh|Wright|Hussain|Price|Shah|Taylor|Bennett|McKenzie", L)
	nR = words("Leader of @C|Mayor of @P|Deputy Leader of @C|Cabinet Member for Communities, @C|Cabinet Member for Neighbourhoods, @C|Chief Executive of @C|Executive Member for Inclusive Growth, @C|Portfolio Holder for Community Wealth, @C", R)
	nS = words("This isn’t about altruism or working with local organisations because it’s a nice thing to do.|We want to keep services local because we know it’s the best way to provide the best possible offer for our communities.|In @P we have moved away from big outsourcing contracts towards partnerships with the groups that know our neighbourhoods best.|Our community organisations reached people during the pandemic that no national provider could find.|Keeping it local means sharing power with residents, not just consulting them once a year.|We now commission @N services through local charities and social enterprises, and the results speak for themselves.|Every £1 we spend with a local organisation stays in @P and does the work of several.|The principles of Keep it Local sit at the heart of our community strategy and our day-to-day decisions.|It is not easy to change how a council commissions – procurement rules, habits and budgets all pull the other way.|We have learned that trust takes years to build and moments to lose, so we build it on purpose.|Small contracts, longer terms and simpler forms have opened our tenders to groups that never bid before.|Over @M per cent of our community services budget now goes to organisations rooted in @P.|We are proud to stand with other Keep it Local councils and learn from what they have tried.|Residents told us they wanted services they could walk to, run by people they recognise.|Austerity made us rethink everything, and working with the local voluntary sector was the answer that lasted.|Our officers and our partners now design services together, from the first conversation to the last review.|Being part of the network keeps us honest about what we promise and what we deliver.|We measure success by the strength of our neighbourhoods, not by the size of a single contract.|Local organisations bring knowledge, energy and relationships that no specification can buy.|When we kept it local, people who had fallen between services were finally seen and supported.|“Occupy the rhetoric” was the phrase that stuck with us, and now we are making it real in @P.|The council cannot do this alone, and neither can the community: it takes both, working as equals.|Our new social value framework rewards bidders who hire locally and reinvest in @P.|We started with @N pilot projects and grew the ones that worked into core services.|The Keep it Local principles gave our councillors a shared language for a difficult conversation.|What matters most is that people in @P can shape the services they rely on.", S)
	nI = words("More and more local authorities are moving away from bureaucratic commissioning and big outsourcing contracts.|Instead, they are unlocking the power of community: building strong local partnerships, sharing power and maximising local strengths.", I)

	print "# A generated dataset of " n " member councils (bench/gen-dataset.sh " n " " seed "):"
	print "# not real councils or people. Include it from a config with its server group."
	print "network = {"
	print "  name = \"Keep it Local Network\";"
	print "  url = \"https://locality.org.uk/policy-campaigns/keep-it-local/\";"
	print "  updated = \"2026-11-25\";"
	print "  introduction = [ \"" I[1] " " I[2] "\" ];"
	print "  quote = {"
	print "    text = \"We’re embedding the Keep it Local principles in the heart of our Community Strategy, and the day-to-day operation of the council.\";"
	print "    by = \"Philip Glanville, Mayor of Hackney\";"
	print "  };"
	print "  background = [ \"But we know changing direction is a difficult thing to do. So we have convened the Keep it Local Network in partnership with Lloyds Bank Foundation to support places on this journey and help make change happen.\" ];"
	print "  convener = \"Locality\";"
	print "  partner = \"Lloyds Bank Foundation\";"
	print "  members_intro = [ \"The following councils have been through the process to join the Keep it Local Network. If you want to join them, or encourage your council to do so, you can join the Keep it Local network.\" ];"
	print "  members = ("
	last = 8 * 365 + 328   # 2026-11-25, the seed snapshot: no date after it
	for (i = 1; i <= n; i++) {
		place = pick(D, nD) pick(A, nA) pick(B, nB)
		name = place " " pick(K, nK)
		if (name in seen_name)
			name = name " (" (++seen_name[name]) ")"
		else
			seen_name[name] = 1
		id = slug(name)
		if (length(id) > 56) id = substr(id, 1, 56)
		if (id in seen_id)
			id = id "-" (++seen_id[id])
		seen_id[id] = 1
		council = name
		role = pick(R, nR)
		gsub(/@C/, council, role)
		gsub(/@P/, place, role)
		np = 1 + rnd(3)
		printf "    {\n      id = \"%s\";\n      name = \"%s\";\n", id, name
		printf "      spokesperson = \"%s%s %s\";\n", rnd(3) ? "Cllr " : "", pick(F, nF), pick(L, nL)
		printf "      role = \"%s\";\n      statement = [\n", role
		for (p = 1; p <= np; p++)
			printf "        \"%s\"%s\n", paragraph(place, p == 1, p == np), p < np ? "," : ""
		printf "      ];\n"
		# Most have joined dates, some an updated one after it, a few neither.
		r = rnd(20)
		if (r > 0) {
			j = rnd(last - 30)
			printf "      joined = \"%s\";\n", date(j)
			if (r > 11)
				printf "      updated = \"%s\";\n", date(j + 1 + rnd(last - j))
		}
		printf "    }%s\n", i < n ? "," : ""
	}
	print "  );"
	print "  join = {"
	print "    heading = \"Become a Keep it Local Council\";"
	print "    text = ["
	print "      \"Locality has been helping councils to Keep it Local for years. Top-level leadership is crucial, and keeping it local must be a key part of a council’s DNA.\","
	print "      \"To find out how your council can Keep it Local, why not join the Keep it Local movement?\""
	print "    ];"
	print "    label = \"Join the Keep it Local movement\";"
	print "    url = \"https://locality.org.uk/policy-campaigns/keep-it-local/\";"
	print "  };"
	print "};"
}'
