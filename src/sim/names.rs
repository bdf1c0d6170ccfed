//! Word lists for the generated dataset: transliterated Ukrainian names, streets,
//! districts, companies and banks.
//!
//! Owns: constant data only. Must not: hold logic beyond picking from lists.

/// Cities, used for nodes (the root department carries the node's name).
pub const CITIES: &[&str] = &[
    "Kyiv",
    "Lviv",
    "Dnipro",
    "Odesa",
    "Kharkiv",
    "Vinnytsia",
    "Poltava",
    "Zaporizhzhia",
    "Chernihiv",
    "Uzhhorod",
    "Ternopil",
    "Rivne",
];

/// Department names below a node's root.
pub const DEPARTMENTS: &[&str] = &[
    "Residential",
    "Business clients",
    "Budget organisations",
    "Staff",
    "Left bank",
    "Right bank",
    "Centre",
    "Suburbs",
    "Privileged",
    "Key accounts",
    "Old town",
    "New district",
];

/// Surnames that are the same for men and women.
pub const SURNAMES: &[&str] = &[
    "Kovalenko",
    "Shevchenko",
    "Bondarenko",
    "Tkachenko",
    "Kravchenko",
    "Oliinyk",
    "Melnyk",
    "Shevchuk",
    "Polishchuk",
    "Boiko",
    "Lysenko",
    "Marchenko",
    "Rudenko",
    "Savchenko",
    "Petrenko",
    "Moroz",
    "Kovalchuk",
    "Tkachuk",
    "Romanenko",
    "Ponomarenko",
    "Klymenko",
    "Pavlenko",
    "Levchenko",
    "Kharchenko",
    "Sydorenko",
    "Honcharuk",
    "Yaremchuk",
    "Hrytsenko",
    "Zinchenko",
    "Mazur",
    "Karpenko",
    "Vasylenko",
    "Ivanenko",
    "Fedorchuk",
    "Martyniuk",
];

/// Men's given names.
pub const MALE_NAMES: &[&str] = &[
    "Oleksandr",
    "Andrii",
    "Serhii",
    "Volodymyr",
    "Dmytro",
    "Mykola",
    "Ivan",
    "Petro",
    "Vasyl",
    "Yurii",
    "Taras",
    "Bohdan",
    "Ostap",
    "Roman",
    "Ihor",
    "Maksym",
];

/// Women's given names.
pub const FEMALE_NAMES: &[&str] = &[
    "Olena",
    "Nataliia",
    "Tetiana",
    "Iryna",
    "Oksana",
    "Svitlana",
    "Mariia",
    "Yuliia",
    "Halyna",
    "Liudmyla",
    "Kateryna",
    "Anna",
    "Sofiia",
    "Daryna",
    "Khrystyna",
    "Larysa",
];

/// Patronymics: (male form, female form).
pub const PATRONYMICS: &[(&str, &str)] = &[
    ("Petrovych", "Petrivna"),
    ("Ivanovych", "Ivanivna"),
    ("Oleksandrovych", "Oleksandrivna"),
    ("Mykolaiovych", "Mykolaivna"),
    ("Vasylovych", "Vasylivna"),
    ("Serhiiovych", "Serhiivna"),
    ("Andriiovych", "Andriivna"),
    ("Volodymyrovych", "Volodymyrivna"),
    ("Yuriiovych", "Yuriivna"),
    ("Mykhailovych", "Mykhailivna"),
    ("Stepanovych", "Stepanivna"),
    ("Hryhorovych", "Hryhorivna"),
];

/// Company name stems (legal entities).
pub const COMPANIES: &[&str] = &[
    "Dnipro-Telecom",
    "Karpaty-Lis",
    "Slavutych Trade",
    "Podillia Agro",
    "Zoria Logistics",
    "Tavriia Invest",
    "Polissia Energo",
    "Prykarpattia Bud",
    "Sokil Media",
    "Kalyna Foods",
    "Dovira Consulting",
    "Berehynia Pharm",
    "Veselka Print",
    "Kobzar Soft",
    "Lvivski Kruasany",
    "Chornomor Port Service",
    "Svitanok Mebli",
    "Optima Auto",
];

/// Legal forms.
pub const LEGAL_FORMS: &[&str] = &["TOV", "PP", "PrAT", "TzOV"];

/// Budget organisations.
pub const BUDGET_ORGS: &[&str] = &[
    "KNP Miska likarnia No. 3",
    "Zahalnoosvitnia shkola No. 12",
    "Viddil osvity",
    "Tsentr nadannia administratyvnykh posluh",
    "Miska biblioteka",
    "Dytiachyi sadok No. 7",
];

/// Streets.
pub const STREETS: &[&str] = &[
    "vul. Khreshchatyk",
    "vul. Shevchenka",
    "prosp. Peremohy",
    "vul. Ivana Franka",
    "vul. Lesi Ukrainky",
    "vul. Sadova",
    "vul. Hrushevskoho",
    "bulv. Tarasa Shevchenka",
    "vul. Soborna",
    "vul. Kyivska",
    "vul. Naberezhna",
    "vul. Zelena",
    "vul. Lvivska",
    "prosp. Nezalezhnosti",
    "vul. Vyshneva",
    "vul. Hetmana Mazepy",
];

/// Districts (`area`).
pub const AREAS: &[&str] = &[
    "Shevchenkivskyi",
    "Holosiivskyi",
    "Pecherskyi",
    "Podilskyi",
    "Obolonskyi",
    "Darnytskyi",
    "Solomianskyi",
    "Desnianskyi",
    "Tsentralnyi",
    "Zaliznychnyi",
];

/// Banks: (name, MFO code).
pub const BANKS: &[(&str, &str)] = &[
    ("PrivatBank", "305299"),
    ("Kredobank", "325365"),
    ("Raiffeisen Bank", "380805"),
    ("Oschadbank", "300465"),
    ("Universal Bank", "322001"),
    ("OTP Bank", "300528"),
];

/// E-mail domains of individuals.
pub const MAIL_DOMAINS: &[&str] = &["ukr.net", "gmail.com", "i.ua", "meta.ua"];

/// Latin transliteration of a name into an e-mail-safe lower-case slug.
pub fn slug(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if !out.ends_with('-') && !out.is_empty() {
            out.push('-');
        }
    }
    out.trim_end_matches('-').to_owned()
}

#[cfg(test)]
mod tests {
    #[test]
    fn slug_is_mail_safe() {
        assert_eq!(super::slug("Dnipro-Telecom"), "dnipro-telecom");
        assert_eq!(super::slug("Slavutych Trade"), "slavutych-trade");
        assert_eq!(
            super::slug("KNP Miska likarnia No. 3"),
            "knp-miska-likarnia-no-3"
        );
    }
}
