#!/usr/bin/env python3
# Monte Carlo estimate of how many uniform random draws reach the study targets (Branin within 1%, Hartmann-6 within
# 5% of the published minimum): expected random-search evaluations = 1/p. Pure Python, about 10 s CPU.
import random, math
r=random.Random(0)
N=1_000_000
b=5.1/(4*math.pi**2); c=5/math.pi; t=1/(8*math.pi)
h=0
for _ in range(N):
    x1=r.uniform(-5,10); x2=r.uniform(0,15)
    f=(x2-b*x1*x1+c*x1-6)**2+10*(1-t)*math.cos(x1)+10
    h+= f<=0.397887*1.01
print("branin hits",h,"of",N,"expected random evals",N/max(h,1))
A=[[10,3,17,3.5,1.7,8],[0.05,10,17,0.1,8,14],[3,3.5,1.7,10,17,8],[17,8,0.05,10,0.1,14]]
P=[[0.1312,0.1696,0.5569,0.0124,0.8283,0.5886],[0.2329,0.4135,0.8307,0.3736,0.1004,0.9991],[0.2348,0.1451,0.3522,0.2883,0.3047,0.6650],[0.4047,0.8828,0.8732,0.5743,0.1091,0.0381]]
al=[1,1.2,3,3.2]
h=0
for _ in range(N):
    x=[r.random() for _ in range(6)]
    s=sum(al[i]*math.exp(-sum(A[i][j]*(x[j]-P[i][j])**2 for j in range(6))) for i in range(4))
    h+= -s<=-3.32237*0.95
print("hartmann6 hits",h,"of",N,"expected random evals",N/max(h,1))
