"""DNS-based steering beside anycast: gdnsd (authoritative, health-checked) on the origin, unbound in every
eyeball ISP, and the experiment that puts the two side by side (`anycastlab steering`)."""
