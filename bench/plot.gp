# Draws rfd-bench's figures.  rfd-bench runs it as
#   gnuplot -e "dir='DIR'; out='FILE.png'; panels='1 2 3 4 5'" plot.gp
# where DIR holds panelN.tsv: a header row of series names, a "#colors" row
# with a colour per series, then one row per group (tab-separated, '-' where
# a figure is missing).

titles = "'Round trip p50 latency (us, log scale), lower is better' \
'Pipelined throughput, 1 FD per call (calls/s), higher is better' \
'Large payload, time per call (ms, log scale), lower is better' \
'Server scaling, one call in flight per connection (calls/s), higher is better' \
'Stream throughput, server to client (FDs/s, log scale), higher is better'"
xlabels = "'FDs per call' 'calls in flight x connections' 'payload size' 'connections' 'FDs per item'"

n = words(panels)
rows = (n + 1) / 2
cols = n > 1 ? 2 : 1
set terminal pngcairo size 1600,(rows * 550) font "sans,10"
set output out
set datafile separator "\t"
set datafile missing "-"
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.85 border -1
set boxwidth 0.9
set key top left reverse Left noenhanced
set grid ytics
set yrange [0:*]

set multiplot layout rows, cols title "rfd-bench: rocketfd against raw sendmsg/recvmsg and sd-bus" font "sans,13"
do for [i = 1:n] {
	p = int(word(panels, i))
	f = sprintf("%s/panel%d.tsv", dir, p)
	stats f using 0 nooutput
	ncol = STATS_columns
	colors = system(sprintf("sed -n 's/^#colors\t//p' '%s' | tr '\t' ' '", f))
	set title word(titles, p) noenhanced
	set xlabel word(xlabels, p)
	if (p == 1 || p == 3 || p == 5) {
		set logscale y
		set yrange [*:*]
		set offsets 0, 0, 0, 0
	} else {
		unset logscale y
		set yrange [0:*]
		set offsets 0, 0, graph 0.05, 0
	}
	plot for [c = 2:ncol] f using c:xtic(1) title columnheader(c) lc rgb word(colors, c - 1)
}
unset multiplot
