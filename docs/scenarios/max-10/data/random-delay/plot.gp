set terminal pngcairo size 1800,900 font 'DejaVu Sans,10'
set output '../../random-delay.png'
set multiplot layout 2,3 title 'random-delay: the report’s fake service: a random 0–30 s of work per request (stages ÷ 6, max 10 replicas)' font ',12'
set grid
set xrange [0:190]
set datafile separator '\t'
set datafile missing 'NaN'
set key top center horizontal samplen 1 font ',8'
unset y2tics; unset y2label; set ytics nomirror
set title '(a) without Kueuer: CPU HPA: latency by request start'
set xlabel 'seconds since the load started'
set ylabel 'latency (s)'
set yrange [0:80]
unset arrow
set arrow from 10.0, graph 0 to 10.0, graph 1 nohead dt 3 lc rgb '#999999'
set arrow from 40.0, graph 0 to 40.0, graph 1 nohead dt 3 lc rgb '#999999'
set arrow from 70.0, graph 0 to 70.0, graph 1 nohead dt 3 lc rgb '#999999'
set arrow from 140.0, graph 0 to 140.0, graph 1 nohead dt 3 lc rgb '#999999'
plot 'a-requests.tsv' using 1:($3==0?$2:1/0) with points pt 7 ps 0.4 lc rgb '#2e7d32' title 'answered', \
     '' using 1:($3==1?$2:1/0) with points pt 7 ps 0.5 lc rgb '#c62828' title 'client timeout (60 s)', \
     '' using 1:($3==2?$2:1/0) with points pt 7 ps 0.5 lc rgb '#ef6c00' title 'HTTP error', \
     '' using 1:($3==3?$2:1/0) with points pt 7 ps 0.5 lc rgb '#6a1b9a' title 'connection refused/reset'
unset y2tics; unset y2label; set ytics nomirror
set title '(b) Kueuer on RabbitMQ: latency by request start'
set xlabel 'seconds since the load started'
set ylabel 'latency (s)'
set yrange [0:80]
unset arrow
set arrow from 10.0, graph 0 to 10.0, graph 1 nohead dt 3 lc rgb '#999999'
set arrow from 40.0, graph 0 to 40.0, graph 1 nohead dt 3 lc rgb '#999999'
set arrow from 70.0, graph 0 to 70.0, graph 1 nohead dt 3 lc rgb '#999999'
set arrow from 140.0, graph 0 to 140.0, graph 1 nohead dt 3 lc rgb '#999999'
plot 'b-requests.tsv' using 1:($3==0?$2:1/0) with points pt 7 ps 0.4 lc rgb '#2e7d32' title 'answered', \
     '' using 1:($3==1?$2:1/0) with points pt 7 ps 0.5 lc rgb '#c62828' title 'client timeout (60 s)', \
     '' using 1:($3==2?$2:1/0) with points pt 7 ps 0.5 lc rgb '#ef6c00' title 'HTTP error', \
     '' using 1:($3==3?$2:1/0) with points pt 7 ps 0.5 lc rgb '#6a1b9a' title 'connection refused/reset'
unset y2tics; unset y2label; set ytics nomirror
set title '(c) Kueuer on Kafka: latency by request start'
set xlabel 'seconds since the load started'
set ylabel 'latency (s)'
set yrange [0:80]
unset arrow
set arrow from 10.0, graph 0 to 10.0, graph 1 nohead dt 3 lc rgb '#999999'
set arrow from 40.0, graph 0 to 40.0, graph 1 nohead dt 3 lc rgb '#999999'
set arrow from 70.0, graph 0 to 70.0, graph 1 nohead dt 3 lc rgb '#999999'
set arrow from 140.0, graph 0 to 140.0, graph 1 nohead dt 3 lc rgb '#999999'
plot 'c-requests.tsv' using 1:($3==0?$2:1/0) with points pt 7 ps 0.4 lc rgb '#2e7d32' title 'answered', \
     '' using 1:($3==1?$2:1/0) with points pt 7 ps 0.5 lc rgb '#c62828' title 'client timeout (60 s)', \
     '' using 1:($3==2?$2:1/0) with points pt 7 ps 0.5 lc rgb '#ef6c00' title 'HTTP error', \
     '' using 1:($3==3?$2:1/0) with points pt 7 ps 0.5 lc rgb '#6a1b9a' title 'connection refused/reset'
set title '(a) without Kueuer: CPU HPA: replicas and app CPU'
set xlabel 'seconds since the load started'
set ylabel 'replicas'
set yrange [0:12]
set y2tics; set ytics nomirror
set y2label 'app CPU (millicores)'
set y2range [0:*]
unset arrow
set arrow from 10.0, graph 0 to 10.0, graph 1 nohead dt 3 lc rgb '#999999'
set arrow from 40.0, graph 0 to 40.0, graph 1 nohead dt 3 lc rgb '#999999'
set arrow from 70.0, graph 0 to 70.0, graph 1 nohead dt 3 lc rgb '#999999'
set arrow from 140.0, graph 0 to 140.0, graph 1 nohead dt 3 lc rgb '#999999'
plot 'a-samples.tsv' using 1:6 axes x1y2 with filledcurves x1 fs transparent solid 0.25 noborder lc rgb '#1565c0' title 'app CPU', \
     '' using 1:2 with lines lw 2 lc rgb '#2e7d32' title 'ready', \
     '' using 1:4 with lines lw 1 dt 2 lc rgb '#000000' title 'HPA desired'
set title '(b) Kueuer on RabbitMQ: replicas and Kueuer backlog'
set xlabel 'seconds since the load started'
set ylabel 'replicas'
set yrange [0:12]
set y2tics; set ytics nomirror
set y2label 'backlog (requests)'
set y2range [0:*]
unset arrow
set arrow from 10.0, graph 0 to 10.0, graph 1 nohead dt 3 lc rgb '#999999'
set arrow from 40.0, graph 0 to 40.0, graph 1 nohead dt 3 lc rgb '#999999'
set arrow from 70.0, graph 0 to 70.0, graph 1 nohead dt 3 lc rgb '#999999'
set arrow from 140.0, graph 0 to 140.0, graph 1 nohead dt 3 lc rgb '#999999'
plot 'b-samples.tsv' using 1:5 axes x1y2 with filledcurves x1 fs transparent solid 0.25 noborder lc rgb '#1565c0' title 'Kueuer backlog', \
     '' using 1:2 with lines lw 2 lc rgb '#2e7d32' title 'ready', \
     '' using 1:4 with lines lw 1 dt 2 lc rgb '#000000' title 'HPA desired'
set title '(c) Kueuer on Kafka: replicas and Kueuer backlog'
set xlabel 'seconds since the load started'
set ylabel 'replicas'
set yrange [0:12]
set y2tics; set ytics nomirror
set y2label 'backlog (requests)'
set y2range [0:*]
unset arrow
set arrow from 10.0, graph 0 to 10.0, graph 1 nohead dt 3 lc rgb '#999999'
set arrow from 40.0, graph 0 to 40.0, graph 1 nohead dt 3 lc rgb '#999999'
set arrow from 70.0, graph 0 to 70.0, graph 1 nohead dt 3 lc rgb '#999999'
set arrow from 140.0, graph 0 to 140.0, graph 1 nohead dt 3 lc rgb '#999999'
plot 'c-samples.tsv' using 1:5 axes x1y2 with filledcurves x1 fs transparent solid 0.25 noborder lc rgb '#1565c0' title 'Kueuer backlog', \
     '' using 1:2 with lines lw 2 lc rgb '#2e7d32' title 'ready', \
     '' using 1:4 with lines lw 1 dt 2 lc rgb '#000000' title 'HPA desired'
unset multiplot
