# Chart of one bench run: median requests/s (bars, min-max whiskers over the
# clean runs) and median p50/p99 latency. Called by report.py as
#   gnuplot -e 'datafile="..."; outfile="..."; charttitle="..."; ncases=N' chart.gp
# ncases: number of cases (x range, shared by both panels)
# datafile columns: idx "label" rps_median rps_min rps_max p50_ms p99_ms color "bar text" proxy_us_per_req
# (cases that did not run or failed have rps 0 / NaN and say so in "bar text").
set terminal pngcairo noenhanced size 1500,1400 font "DejaVu Sans,10"
set output outfile
set multiplot layout 3,1 title charttitle font ",12"
set style fill solid 0.8 border -1
set boxwidth 0.7
set grid ytics
set xtics rotate by -30 left nomirror
set key off
set lmargin 12
set rmargin 12
set bmargin 7
set ylabel "requests/s (median)"
set yrange [0:*]
set offsets 0, 0, graph 0.08, 0
set xrange [-0.6:ncases-0.4]
plot datafile using 1:3:8:xtic(2) with boxes lc rgb variable, \
     ''       using 1:3:4:5 with yerrorbars lc rgb "black" pt -1 lw 1.5, \
     ''       using 1:3:9 with labels offset 0,0.8 font ",9"
set ylabel "latency, ms (median of runs, log scale)"
set logscale y
set yrange [*:*]
set offsets 0, 0, 0, 0
set key top right
plot datafile using 1:7:xtic(2) with points pt 7 ps 1.5 lc rgb "#cc3311" title "p99", \
     ''       using 1:6 with points pt 5 ps 1.3 lc rgb "#0077bb" title "p50"
set ylabel "proxy CPU us per request (median)"
unset logscale y
set yrange [0:*]
set offsets 0, 0, graph 0.08, 0
set key off
# (cases without a proxy, failed or not run: 0, so that the panel always has points)
plot datafile using 1:(valid(10) ? $10 : 0):8:xtic(2) with boxes lc rgb variable, \
     ''       using 1:(valid(10) ? $10 : 0):(valid(10) ? sprintf("%.0f", $10) : "") with labels offset 0,0.8 font ",9"
unset multiplot
